"""`manage.py demo_data`: demo users and data (development only; idempotent). Exit status
0, or 2 when it could not run (DEBUG off without --force, database unavailable)."""

import os

from django.conf import settings

from core.commands import ConfirmaCommand, usage_error
from core.demo import demo_builders, demo_users_ensure


class Command(ConfirmaCommand):
    help = "Create demo users (one per role, a customer and a superuser) and print the logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=None,
            help="password for new demo users (default: $DEMO_PASSWORD or confirma-demo)",
        )
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="set the password of demo users that already exist too",
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="allow running with DEBUG off (never on a real deployment)",
        )

    def handle(self, *args, password, reset_passwords, force, **options):
        if not settings.DEBUG and not force:
            raise usage_error("Refusing to create demo users with DEBUG off (use --force).")
        password = password or os.environ.get("DEMO_PASSWORD") or "confirma-demo"
        logins = demo_users_ensure(password=password, reset_passwords=reset_passwords)
        self.stdout.write(f"Demo logins (password for new users: {password}):")
        for login in logins:
            state = "created" if login.created else "exists"
            self.stdout.write(f"  {login.username:<10} {login.role:<10} ({state})")
        for builder in demo_builders():
            for line in builder():
                self.stdout.write(line)
