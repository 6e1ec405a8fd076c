"""The waiter's new-order form: reads the page's fields; `order_create` decides the rest."""

import re
from decimal import Decimal

from django import forms
from django.utils.translation import gettext_lazy as _

from orders.services import ORDER_MAX_AMOUNT, ORDER_MAX_QUANTITY, ORDER_NOTES_MAX

QTY_FIELD = re.compile(r"qty_(\d{1,9})")


class AmountField(forms.DecimalField):
    """A decimal comma is taken as a decimal point (how a Spanish or Brazilian phone types
    it); thousands separators are not accepted."""

    def to_python(self, value):
        if isinstance(value, str) and value.count(",") == 1 and "." not in value:
            value = value.replace(",", ".")
        return super().to_python(value)


class OrderEntryForm(forms.Form):
    table = forms.TypedChoiceField(
        label=_("Table"), coerce=int, error_messages={"required": _("Choose a table.")}
    )
    amount = AmountField(
        label=_("Amount"),
        required=False,
        min_value=Decimal("0.01"),
        max_value=ORDER_MAX_AMOUNT,
        decimal_places=2,
        max_digits=8,
        help_text=_("For what is not on the menu."),
    )
    notes = forms.CharField(
        label=_("Notes for the kitchen"),
        required=False,
        max_length=ORDER_NOTES_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    form_key = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, tables, products, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["table"].choices = [("", "—")] + [(t.pk, t.name) for t in tables]
        self.products = products
        for product in products:
            self.fields[f"qty_{product.pk}"] = forms.IntegerField(
                label=product.name,
                required=False,
                min_value=0,
                max_value=ORDER_MAX_QUANTITY,
                widget=forms.NumberInput(attrs={"inputmode": "numeric", "min": 0}),
            )

    def item_rows(self):
        """(product, bound quantity field) for the template."""
        return [(product, self[f"qty_{product.pk}"]) for product in self.products]

    def items(self) -> list[tuple[int, int]]:
        """The quantities asked for, including any of an item taken off the menu since the
        page was opened: the service refuses those rather than the order losing them."""
        items = [
            (product.pk, self.cleaned_data.get(f"qty_{product.pk}") or 0)
            for product in self.products
        ]
        for key, value in self.data.items():
            match = QTY_FIELD.fullmatch(key)
            if match and key not in self.fields and value.strip() not in ("", "0"):
                quantity = value.strip()
                items.append((int(match[1]), int(quantity) if quantity.isdigit() else quantity))
        return items

    def clean(self):
        data = super().clean()
        unreadable = "amount" in self.errors or any(k.startswith("qty_") for k in self.errors)
        if not unreadable and not any(q for _pk, q in self.items()) and not data.get("amount"):
            raise forms.ValidationError(_("Add at least one item or an amount."))
        return data
