"""The audience builders make names the consumer accepts, and only those."""

import pytest
from django.contrib.auth.models import AnonymousUser

from notifications.audiences import (
    audience_display,
    audience_group,
    audience_machine,
    audience_payment,
    audience_role,
    audience_user,
    audience_validate,
    user_audiences,
)
from notifications.errors import InvalidAudience
from tests.factories import UserFactory


def test_each_builder_names_its_kind():
    assert audience_user(7) == "user:7"
    assert audience_role("operator") == "role:operator"
    assert audience_display("hall") == "display:hall"
    assert audience_payment("ps_abc-1") == "payment:ps_abc-1"
    assert audience_machine(3) == "machine:3"


@pytest.mark.parametrize(
    "audience",
    [
        audience_user(42),
        audience_role("cashier"),
        audience_display("hall"),
        audience_payment("ps_abc_DEF-9"),
        audience_machine(5),
    ],
)
def test_what_the_builders_make_is_valid(audience):
    assert audience_validate(audience) == audience
    assert ":" not in audience_group(audience)


@pytest.mark.parametrize(
    "audience", [audience_role("janitor"), audience_payment("ps x"), audience_user("7;8")]
)
def test_a_builder_does_not_make_an_invalid_name_valid(audience):
    with pytest.raises(InvalidAudience):
        audience_validate(audience)


@pytest.mark.django_db
def test_a_user_sees_their_own_audience_then_their_roles():
    user = UserFactory(roles=["waiter", "cashier"])
    assert user_audiences(user) == [
        audience_user(user.pk),
        audience_role("cashier"),
        audience_role("waiter"),
    ]
    assert user_audiences(AnonymousUser()) == []
