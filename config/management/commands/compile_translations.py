"""Compile locale/*/LC_MESSAGES/*.po into .mo files without needing GNU gettext. Exit
status 0, or 2 when a catalogue cannot be read or written."""

from pathlib import Path

import polib
from django.conf import settings

from core.commands import ConfirmaCommand, usage_error


class Command(ConfirmaCommand):
    help = "Compile the translation catalogues (.po → .mo)."

    def handle(self, *args, **options):
        count = 0
        for locale_dir in settings.LOCALE_PATHS:
            for po_path in sorted(Path(locale_dir).glob("*/LC_MESSAGES/*.po")):
                try:
                    catalogue = polib.pofile(str(po_path))
                    catalogue.save_as_mofile(str(po_path.with_suffix(".mo")))
                except (OSError, ValueError) as exc:
                    raise usage_error(f"{po_path.name}: {exc}") from exc
                count += 1
        self.summary(f"compiled {count} catalogues", happened=bool(count), compiled=count)
