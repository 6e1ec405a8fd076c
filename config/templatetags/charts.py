"""`{% load charts %}{% last_day_charts %}`: the operations and integration pages' charts of
the last 24 hours (see config.series and config.charts)."""

from django import template
from django.utils.safestring import mark_safe

from config import charts
from config.series import last_day_series

register = template.Library()


@register.simple_tag
def last_day_charts():
    figures = charts.last_day_charts(last_day_series())
    return mark_safe('<div class="charts" id="charts">' + "".join(figures) + "</div>")  # noqa: S308
