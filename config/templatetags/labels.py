"""Filters that turn the codes Confirma stores (purposes, providers, statuses, event types,
audiences) into the translated labels people read. Machine-readable places (`data-*`
attributes, JSON) keep the codes."""

from django import template

from notifications.labels import alert_label as _alert_label
from notifications.labels import alert_labels as _alert_labels
from notifications.labels import audience_label as _audience_label
from notifications.labels import event_type_label as _event_type_label
from payments.labels import delivery_status_label as _delivery_status_label
from payments.labels import gap_kind_label as _gap_kind_label
from payments.labels import provider_label as _provider_label
from payments.registry import purpose_label as _purpose_label

register = template.Library()


@register.filter
def purpose_label(name) -> str:
    return _purpose_label(str(name or ""))


@register.filter
def provider_label(code) -> str:
    return _provider_label(str(code or ""))


@register.filter
def delivery_status_label(code) -> str:
    return _delivery_status_label(str(code or ""))


@register.filter
def gap_kind_label(code) -> str:
    return _gap_kind_label(str(code or ""))


@register.filter
def event_type_label(code) -> str:
    return _event_type_label(str(code or ""))


@register.filter
def audience_label(audience) -> str:
    return _audience_label(str(audience or ""))


@register.filter
def alert_label(code) -> str:
    return _alert_label(str(code or ""))


@register.simple_tag
def alert_labels() -> dict[str, str]:
    """Every alert code's label in the active language: the live alert bar shows these."""
    return _alert_labels()
