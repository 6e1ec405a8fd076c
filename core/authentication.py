"""API authentication: DRF's token scheme, refusing keys no database column can hold."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from core.text import text_storable


class StorableTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`; a key with a NUL is refused like any wrong key,
    instead of reaching the database (a DataError and a 500)."""

    def authenticate_credentials(self, key):
        if not text_storable(key):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(key)
