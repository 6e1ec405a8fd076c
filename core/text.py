"""Text from outside that the database cannot hold."""

import re

# PostgreSQL text columns cannot hold NUL, and a lone surrogate has no UTF-8 encoding.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_storable(value: str) -> bool:
    """False for text no PostgreSQL text column can hold (a NUL character, a lone
    surrogate). Such a value matches no row, yet a query comparing a column with it
    raises (DataError, UnicodeEncodeError) instead of finding nothing: look a
    user-supplied string up only when this is True, and answer "not found" otherwise."""
    return _UNSTORABLE.search(value) is None
