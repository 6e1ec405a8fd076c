"""Roles are Django groups (created by a migration); superusers hold every role."""

from django.conf import settings


def user_roles(user) -> set[str]:
    if user is None or not user.is_authenticated or not user.is_active:
        return set()
    if user.is_superuser:
        return set(settings.ROLES)
    cached = getattr(user, "_confirma_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=settings.ROLES).values_list("name", flat=True))
        user._confirma_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    """True when the user holds any of `roles` (staff always counts)."""
    held = user_roles(user)
    return bool(held & (set(roles) | {"staff"}))
