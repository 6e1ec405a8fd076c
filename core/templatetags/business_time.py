"""`{% load business_time %}{{ moment|business_time }}`: a moment (datetime or ISO 8601 text)
shown in BUSINESS_TIME_ZONE in the active language, with the zone named.

Shorter forms for tables and sentences: `business_time:"short"` (short date and time,
zone named), `business_time:"time"` (time of day, zone named) and `business_time:"clock"`
(time of day alone, for a table or list whose heading names the zone with
`{% business_zone_name %}`)."""

from babel.dates import format_datetime, format_time
from django import template

from core.formatting import _aware, babel_locale, business_time_text, business_zone

register = template.Library()


@register.filter
def business_time(value, style: str = ""):
    if style not in ("short", "time", "clock"):
        return business_time_text(value)
    moment = _aware(value)
    if moment is None:
        return "" if value is None else str(value)
    zone = business_zone()
    if style == "short":
        text = format_datetime(moment, "short", tzinfo=zone, locale=babel_locale())
    else:
        text = format_time(moment, "short", tzinfo=zone, locale=babel_locale())
    return text if style == "clock" else f"{text} ({zone.key})"


@register.simple_tag
def business_zone_name() -> str:
    """The business's time zone, as named next to the times it shows."""
    return business_zone().key
