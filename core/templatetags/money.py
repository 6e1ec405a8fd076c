"""`{% load money %}{{ amount|money:currency }}`: an amount with its currency in the active
language's conventions ("R$ 20,00", "$9.99"). For people only: `data-*` attributes and
anything machines read keep the plain value."""

from django import template

from core.formatting import money_text

register = template.Library()


@register.filter
def money(amount, currency=""):
    return money_text(amount, currency)
