"""Audience names, their channel-layer groups, and who may see which.

An audience is decided by the server from who is connected (a user, or what a signed
token grants) — never from what a client asks for.
"""

import re

from django.conf import settings

from core.roles import user_roles
from notifications.errors import InvalidAudience

_AUDIENCE = re.compile(
    r"^(?:user:[0-9]{1,18}"
    r"|role:(?P<role>[a-z]{1,20})"
    r"|display:[A-Za-z0-9_-]{1,64}"
    r"|payment:[A-Za-z0-9_-]{1,64}"
    r"|machine:[0-9]{1,18})$"
)
# Audiences a signed token may grant; users and roles come only from a login.
TOKEN_KINDS = ("display", "payment", "machine")


def audience_user(user_id: int) -> str:
    """The audience of one user: their own pages and devices."""
    return f"user:{user_id}"


def audience_role(role: str) -> str:
    """The audience of everyone holding `role` (one of settings.ROLES)."""
    return f"role:{role}"


def audience_display(name: str) -> str:
    """The audience of a named display board (settings.TICKET_DISPLAY)."""
    return f"display:{name}"


def audience_payment(reference: str) -> str:
    """The audience of whoever holds one payment session's token."""
    return f"payment:{reference}"


def audience_machine(machine_id: int) -> str:
    """The audience of one machine's controller."""
    return f"machine:{machine_id}"


def audience_validate(audience: str) -> str:
    """Return `audience` if it is well formed, else raise InvalidAudience."""
    match = _AUDIENCE.match(audience or "")
    if not match or (match.group("role") and match.group("role") not in settings.ROLES):
        raise InvalidAudience(audience)
    return audience


def audience_group(audience: str) -> str:
    """The channel-layer group of an audience (group names allow no colon)."""
    return "events." + audience.replace(":", ".")


def user_audiences(user) -> list[str]:
    """What a logged-in user may see: their own audience and one per role they hold."""
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    roles = user_roles(user)
    if "staff" in roles:
        # Staff may open every role's dashboard (core.roles.has_role): they see its events.
        roles = set(settings.ROLES)
    return [audience_user(user.pk)] + [audience_role(role) for role in sorted(roles)]
