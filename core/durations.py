import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '12h', '30d', '2w' → timedelta; ValueError for anything else."""
    match = _DURATION.match(text or "")
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 15m, 90s or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
