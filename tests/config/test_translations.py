"""Every message in the Portuguese and Spanish catalogues is translated and well formed."""

from pathlib import Path

import polib
import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"


@pytest.mark.parametrize("language", ["pt_BR", "es", "uz", "ru"])
def test_every_message_is_translated_and_none_is_fuzzy(language):
    po = polib.pofile(str(LOCALE / language / "LC_MESSAGES" / "django.po"))
    missing = [e.msgid for e in po if not e.obsolete and not e.translated()]
    fuzzy = [e.msgid for e in po if not e.obsolete and "fuzzy" in e.flags]
    assert missing == [] and fuzzy == []
    nplurals = int(po.metadata["Plural-Forms"].split("nplurals=")[1].split(";")[0])
    for entry in po:
        if entry.msgid_plural and not entry.obsolete:
            assert len(entry.msgstr_plural) == nplurals, entry.msgid
