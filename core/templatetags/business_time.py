"""`{% load business_time %}{{ moment|business_time }}`: a moment (datetime or ISO 8601 text)
shown in BUSINESS_TIME_ZONE in the active language, with the zone named."""

from django import template

from core.formatting import business_time_text

register = template.Library()


@register.filter
def business_time(value):
    return business_time_text(value)
