"""What people read is a translated label, never a field name or a code: every model field
has a verbose name written in code, and pages show labels instead of codes."""

from decimal import Decimal

import pytest
from django.apps import apps
from django.utils.functional import Promise

from tests.factories import UserFactory

CONFIRMA_APPS = ("config", "notifications", "payments", "subscriptions", "tickets", "orders")


def _confirma_models():
    return [m for m in apps.get_models() if m._meta.app_label in CONFIRMA_APPS]


def _labelled_fields(model):
    """Concrete fields a person can see: all but the primary key Django adds by itself."""
    for field in model._meta.concrete_fields:
        if field.primary_key and field.auto_created:
            continue
        yield field


def test_every_confirma_field_has_a_translatable_verbose_name_written_in_code():
    # Django fills `verbose_name` from the field's name when none is given; `_verbose_name`
    # keeps what the code gave (None when nothing was).
    missing, untranslated = [], []
    for model in _confirma_models():
        for field in _labelled_fields(model):
            name = f"{model._meta.label}.{field.name}"
            if field._verbose_name is None:
                missing.append(name)
            elif not isinstance(field._verbose_name, Promise):
                untranslated.append(name)
    assert len(_confirma_models()) > 20
    assert missing == []
    assert untranslated == []


def test_every_confirma_model_names_itself_translatably():
    missing = []
    for model in _confirma_models():
        attrs = model._meta.original_attrs
        for key in ("verbose_name", "verbose_name_plural"):
            if not isinstance(attrs.get(key), Promise):
                missing.append(f"{model._meta.label}.{key}")
    assert missing == []


def test_the_check_finds_a_field_without_a_verbose_name():
    """The walk above really fails: a field declared without one is caught."""
    from django.db import models

    field = models.CharField(max_length=3)
    field.set_attributes_from_name("paid_currency")
    assert field._verbose_name is None
    assert field.verbose_name == "paid currency"  # Django's English default, untranslatable


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "portuguese", "english"),
    [
        (
            "/admin/payments/couponredemption/",
            ["cupom", "sessão de pagamento", "criado em"],
            ["Coupon", "Session", "Created at"],
        ),
        (
            "/admin/payments/walletaccount/",
            ["cliente", "atualizado em"],
            ["User", "Updated at"],
        ),
    ],
)
def test_admin_column_headers_are_translated(client, url, portuguese, english):
    from payments.models import WalletAccount

    staff = UserFactory(roles=["staff"], is_staff=True, is_superuser=True)
    WalletAccount.objects.create(user=staff, balance=Decimal("1.00"))
    client.force_login(staff)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="pt-BR")
    assert response.status_code == 200
    headers = [str(header["text"]).lower() for header in response.context["result_headers"]]
    for label in portuguese:
        assert label in headers, (label, headers)
    for label in english:
        assert label.lower() not in headers, (label, headers)
