"""Signed tokens that let a device or an anonymous screen follow chosen audiences.

A token names its audiences and an expiry; only `display:`, `payment:` and `machine:`
audiences may be granted this way.
"""

import time

from django.conf import settings
from django.core import signing

from notifications.audiences import TOKEN_KINDS, audience_validate
from notifications.errors import InvalidAudience, InvalidToken

_SALT = "confirma.notifications.audience-token"


def audience_token_create(*, audiences: list[str], ttl_seconds: int | None = None) -> str:
    """A token granting `audiences` for `ttl_seconds` (default EVENTS_TOKEN_MAX_AGE)."""
    for audience in audiences:
        audience_validate(audience)
        if audience.split(":", 1)[0] not in TOKEN_KINDS:
            raise InvalidAudience(audience)
    ttl = settings.EVENTS_TOKEN_MAX_AGE if ttl_seconds is None else ttl_seconds
    return signing.dumps({"a": list(audiences), "e": int(time.time()) + ttl}, salt=_SALT)


def audience_token_read(token: str) -> list[str]:
    """The audiences a token grants; raises InvalidToken if forged, malformed or expired."""
    try:
        data = signing.loads(token, salt=_SALT)
    except signing.BadSignature as exc:
        raise InvalidToken("bad_signature") from exc
    if not isinstance(data, dict) or not isinstance(data.get("a"), list):
        raise InvalidToken("malformed")
    if not isinstance(data.get("e"), int) or data["e"] < time.time():
        raise InvalidToken("expired")
    try:
        audiences = [audience_validate(a) for a in data["a"] if isinstance(a, str)]
    except InvalidAudience as exc:
        raise InvalidToken("malformed") from exc
    if any(a.split(":", 1)[0] not in TOKEN_KINDS for a in audiences):
        raise InvalidToken("malformed")
    return audiences


# Apps whose devices hold tokens of their own (a machine controller's device token) add a
# resolver: token -> the audiences it grants, or None when it is not theirs.
_RESOLVERS: list = []


def device_token_resolver_register(resolver) -> None:
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


def token_audiences(token: str) -> list[str]:
    """The audiences any kind of token grants; raises InvalidToken when none accepts it."""
    for resolver in _RESOLVERS:
        audiences = resolver(token)
        if audiences:
            return audiences
    return audience_token_read(token)
