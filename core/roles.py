"""Roles are Django groups (created by a migration); superusers hold every role.

Pages check a role with `role_required`, DRF views with `RolePermission.of(...)`: one
rule (staff always counts) and one answer (login page for visitors, 403 for the rest).
"""

import functools

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission


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


def role_required(*roles: str):
    """Page decorator: a visitor who is not logged in goes to the login page (as with
    `login_required`); a user holding none of `roles` (staff always counts) gets 403."""

    def decorator(view):
        @functools.wraps(view)
        def checked(request, *args, **kwargs):
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(checked)

    return decorator


class RolePermission(BasePermission):
    """DRF permission: a logged-in user holding any of `roles` (staff always counts).
    Make one with `RolePermission.of("operator")`."""

    roles: tuple[str, ...] = ()

    def has_permission(self, request, view):
        return request.user.is_authenticated and has_role(request.user, *self.roles)

    @classmethod
    def of(cls, *roles: str) -> type["RolePermission"]:
        name = "".join(role.title() for role in roles) + "RolePermission"
        return type(name, (cls,), {"roles": roles})
