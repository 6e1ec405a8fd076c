"""Demo users, one per role; later flows add their own demo objects next to these."""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    created: bool


DEMO_USERS = [
    # username, role (group) or "" for none, is_staff, is_superuser
    ("admin", "", True, True),
    ("staff", "staff", True, False),
    ("cashier", "cashier", False, False),
    ("waiter", "waiter", False, False),
    ("kitchen", "kitchen", False, False),
    ("operator", "operator", False, False),
    ("customer", "", False, False),
]


@transaction.atomic
def demo_users_ensure(*, password: str, reset_passwords: bool = False) -> list[DemoLogin]:
    """Create the demo users that are missing; existing ones keep their password unless
    `reset_passwords`. Idempotent."""
    User = get_user_model()
    logins = []
    for username, role, is_staff, is_superuser in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={
                "email": f"{username}@example.com",
                "first_name": username.capitalize(),
                "is_staff": is_staff,
                "is_superuser": is_superuser,
            },
        )
        if created or reset_passwords:
            user.set_password(password)
            user.save(update_fields=["password"])
        if role:
            user.groups.add(Group.objects.get(name=role))
        logins.append(
            DemoLogin(username, role or ("superuser" if is_superuser else "customer"), created)
        )
    return logins


_BUILDERS: list[Callable[[], list[str]]] = []


def demo_register(builder: Callable[[], list[str]]) -> None:
    """Apps add their demo objects: `builder()` must be idempotent and return lines to print."""
    if builder not in _BUILDERS:
        _BUILDERS.append(builder)


def demo_builders() -> list[Callable[[], list[str]]]:
    return list(_BUILDERS)
