from django.utils.translation import gettext_lazy as _

from core.errors import ConfirmaError


class NotificationError(ConfirmaError):
    code = "notification_error"


class InvalidAudience(NotificationError):
    code = "invalid_audience"

    def __init__(self, audience: str) -> None:
        super().__init__(_("Unknown or malformed audience: %(a)s") % {"a": audience[:120]})


class InvalidToken(NotificationError):
    code = "invalid_token"
    status = 401

    def __init__(self, reason: str = "") -> None:
        super().__init__(_("The access token is invalid or has expired."), reason=reason)
