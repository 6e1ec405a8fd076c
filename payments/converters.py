"""The `<reference:…>` URL converter: a payment session's public reference."""

from django.urls import register_converter


class ReferenceConverter:
    """What `payments.models.new_reference` makes ("ps_" + URL-safe base64) and what an
    event audience may name (`payment:<reference>`): letters, digits, `_` and `-`, at most
    64. Anything else matches no URL, so it is "not found" before a view looks it up (a NUL
    or a lone surrogate, which a text column cannot hold, never reaches the database)."""

    regex = "[A-Za-z0-9_-]{1,64}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


def converters_register() -> None:
    """Called once, by PaymentsConfig.ready(), before any URLconf is read."""
    register_converter(ReferenceConverter, "reference")
