"""The admin as staff see it: Confirma's name and logo in every language, each action page
titled once, action messages that say what was done to what, trails newest first, and no
Save button on a page where nothing can be changed."""

import re
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.utils import timezone, translation

from config.models import PeriodicJob, WorkerHeartbeat
from core.admin_tools import AppendOnlyAdmin, ReadOnlyInline
from notifications.models import Alert
from notifications.services import alert_raise
from payments.models import (
    DeliveryStatus,
    PaymentAudit,
    PaymentSession,
    PaymentStatus,
    WebhookDelivery,
    WebhookRefusal,
)
from payments.services import payment_session_create
from subscriptions.models import Subscription, SubscriptionEvent
from subscriptions.services.plans import subscription_activate_manually
from tests.factories import (
    CouponFactory,
    UserFactory,
    WebhookDeliveryFactory,
    WebhookRefusalFactory,
    WorkerHeartbeatFactory,
)
from tests.payments.conftest import staff_client, test_purpose  # noqa: F401 - fixtures
from tests.payments.test_admin import admin_field
from tests.subscriptions.conftest import plans  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db

CONFIRMA_APPS = {"config", "notifications", "payments", "subscriptions", "tickets", "orders"}


def kiosk_session() -> PaymentSession:
    return payment_session_create(
        user=None,
        purpose="test_purchase",
        provider="kiosk",
        params={"item": "tea"},
        idempotency_key=uuid.uuid4().hex,
    ).session


def run_action(client, url, action, objects, **form) -> list[str]:
    """Apply an admin action (with `form`, for one that asks for a form first); the
    messages the changelist then shows."""
    data = {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects]}
    response = client.post(url, {**data, **form}, follow=True)
    assert response.redirect_chain, response.content[:2000]
    return [str(m) for m in response.context["messages"]]


def names_in(message: str) -> set[str]:
    return set(message.rstrip(".").split(": ", 1)[1].split(", "))


def h1_count(html: str) -> int:
    return len(re.findall(r"<h1[\s>]", html))


# Branding ---------------------------------------------------------------------------------


@pytest.mark.parametrize("language", [code for code, _name in settings.LANGUAGES])
def test_every_admin_page_is_branded_confirma_in_every_language(client, language):
    with translation.override(language):
        stock = [
            str(translation.gettext("Django administration")),
            str(translation.gettext("Django site admin")),
        ]
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = language
    login = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    client.force_login(UserFactory(roles=["staff"], is_staff=True))
    pages = [login] + [
        client.get(url, HTTP_ACCEPT_LANGUAGE=language).content.decode()
        for url in ("/admin/", "/admin/payments/paymentsession/")
    ]
    for html in pages:
        title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
        assert title.strip().endswith("| Confirma"), title
        branding = re.search(r'<div id="site-name">(.*?)</div>', html, re.S).group(1)
        assert "Confirma" in branding and "img/confirma.svg" in branding
        assert re.search(r'<link rel="icon" href="[^"]*img/confirma\.svg"', html)
        for text in stock:
            assert text not in html


# Action pages: one title ------------------------------------------------------------------


def test_no_action_page_shows_its_title_twice(staff_client, test_purpose, plans):  # noqa: F811
    """Every action of every admin that answers with a page of its own (a form to fill in
    first), and the manual activation page: the title once, as the page's heading."""
    kiosk_session()
    subscription_activate_manually(
        user=UserFactory(), plan=plans["usd"], days=3, actor=staff_client.user, reason="test"
    )
    alert_raise(code="test.admin", message="Something needs a person")
    walked = set()
    for model in admin.site._registry:
        obj = model._default_manager.order_by("pk").first()
        if obj is None or model._meta.app_label not in CONFIRMA_APPS:
            continue
        url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
        action_form = staff_client.get(url).context["action_form"]
        choices = action_form.fields["action"].choices if action_form else []
        for name in [name for name, _label in choices if name]:
            response = staff_client.post(url, {"action": name, ACTION_CHECKBOX_NAME: [obj.pk]})
            if response.status_code != 200:
                continue  # an action that ran straight away
            html = response.content.decode()
            assert h1_count(html) == 1, (url, name)
            walked.add((model._meta.model_name, name))
    activate = staff_client.get("/admin/subscriptions/subscription/add/").content.decode()
    assert h1_count(activate) == 1
    assert {
        ("paymentsession", "confirm_manually"),
        ("paymentsession", "record_refund"),
        ("subscription", "deactivate"),
        ("subscription", "activate_manually"),
        ("alert", "mark_resolved"),
    } <= walked


# Action messages --------------------------------------------------------------------------


def test_payment_actions_say_what_they_did_to_which_payments(staff_client, test_purpose):  # noqa: F811
    url = "/admin/payments/paymentsession/"
    one, two, three = kiosk_session(), kiosk_session(), kiosk_session()
    reason = {"apply": "1", "reason": "receipt checked by phone"}
    assert run_action(staff_client, url, "confirm_manually", [one], **reason) == [
        f"1 payment confirmed: {one.reference}."
    ]
    [message] = run_action(staff_client, url, "cancel", [two, three], **reason)
    assert message.startswith("2 payments cancelled: ")
    assert names_in(message) == {two.reference, three.reference}
    assert PaymentSession.objects.get(pk=one.pk).status == PaymentStatus.COMPLETED
    assert PaymentSession.objects.get(pk=three.pk).status == PaymentStatus.CANCELLED


def test_subscription_and_alert_actions_say_what_they_did(staff_client, plans):  # noqa: F811
    users = [UserFactory(username=f"subscriber{i}") for i in range(3)]
    subs = [
        subscription_activate_manually(
            user=user, plan=plans["usd"], days=3, actor=staff_client.user, reason="test"
        )
        for user in users
    ]
    url = "/admin/subscriptions/subscription/"
    reason = {"apply": "1", "reason": "asked to"}
    assert run_action(staff_client, url, "deactivate", subs[:1], **reason) == [
        "1 subscription deactivated: subscriber0."
    ]
    [message] = run_action(staff_client, url, "deactivate", subs[1:], **reason)
    assert message.startswith("2 subscriptions deactivated: ")
    assert names_in(message) == {"subscriber1", "subscriber2"}
    assert not Subscription.objects.filter(pk__in=[s.pk for s in subs], status="active").exists()

    alerts = [alert_raise(code=f"test.alert{i}", message="look") for i in range(3)]
    url = "/admin/notifications/alert/"
    assert run_action(staff_client, url, "mark_resolved", alerts[:1], apply="1") == [
        f"1 alert resolved: #{alerts[0].pk} test.alert0."
    ]
    [message] = run_action(staff_client, url, "mark_resolved", alerts[1:], apply="1")
    assert message.startswith("2 alerts resolved: ")
    assert names_in(message) == {f"#{alerts[1].pk} test.alert1", f"#{alerts[2].pk} test.alert2"}
    assert not Alert.objects.filter(resolved_at__isnull=True, code__startswith="test.").exists()


def test_resolving_dead_deliveries_counts_them_with_the_right_plural(staff_client):  # noqa: F811
    dead = [WebhookDeliveryFactory(status=DeliveryStatus.DEAD) for _ in range(3)]
    url = "/admin/payments/webhookdelivery/"

    assert run_action(staff_client, url, "mark_resolved", dead[:1], apply="1") == [
        "1 dead delivery resolved."
    ]
    assert run_action(staff_client, url, "mark_resolved", dead[1:], apply="1") == [
        "2 dead deliveries resolved."
    ]
    assert not WebhookDelivery.objects.filter(pk__in=[d.pk for d in dead], resolved_at=None)


def test_resolving_a_dead_delivery_records_who_and_what_they_did(staff_client):  # noqa: F811
    dead = WebhookDeliveryFactory(status=DeliveryStatus.DEAD)
    processed = WebhookDeliveryFactory(status=DeliveryStatus.PROCESSED)
    url = "/admin/payments/webhookdelivery/"

    # The action asks first, as every staff action that changes something does.
    page = staff_client.post(url, {"action": "mark_resolved", ACTION_CHECKBOX_NAME: [dead.pk]})
    assert page.status_code == 200 and b'name="notes"' in page.content
    assert WebhookDelivery.objects.get(pk=dead.pk).resolved_at is None

    notes = "Customer paid again by PIX; refunded the first payment at Mercado Pago."
    assert run_action(
        staff_client, url, "mark_resolved", [dead, processed], apply="1", notes=notes
    ) == ["1 dead delivery resolved."]
    resolved = WebhookDelivery.objects.get(pk=dead.pk)
    assert resolved.resolved_at is not None
    assert (resolved.resolved_by, resolved.notes) == (staff_client.user, notes)
    assert WebhookDelivery.objects.get(pk=processed.pk).resolved_at is None  # not dead
    # Shown on the delivery's page.
    detail = staff_client.get(f"{url}{dead.pk}/change/").content.decode()
    assert notes in admin_field(detail, "notes")
    assert staff_client.user.username in admin_field(detail, "resolved_by")
    # Resolving it again changes nothing, and says so.
    assert run_action(staff_client, url, "mark_resolved", [dead], apply="1") == [
        "Nothing was changed."
    ]
    assert WebhookDelivery.objects.get(pk=dead.pk).resolved_at == resolved.resolved_at


def test_an_action_that_changed_nothing_says_so(staff_client):  # noqa: F811
    alert = alert_raise(code="test.once", message="look")
    url = "/admin/notifications/alert/"
    assert run_action(staff_client, url, "mark_resolved", [alert], apply="1") == [
        f"1 alert resolved: #{alert.pk} test.once."
    ]
    resolved_at = Alert.objects.get(pk=alert.pk).resolved_at
    # Already resolved: nothing to do, and the page says so rather than "0 done."
    assert run_action(staff_client, url, "mark_resolved", [alert], apply="1") == [
        "Nothing was changed."
    ]
    assert Alert.objects.get(pk=alert.pk).resolved_at == resolved_at


# Newest first -----------------------------------------------------------------------------


def test_trails_and_their_inlines_list_the_newest_first(staff_client, test_purpose):  # noqa: F811
    session = kiosk_session()
    run_action(
        staff_client,
        "/admin/payments/paymentsession/",
        "confirm_manually",
        [session],
        apply="1",
        reason="checked",
    )
    assert session.audits.count() >= 2
    newest_first = list(session.audits.order_by("-created_at", "-id"))

    listed = staff_client.get("/admin/payments/paymentaudit/").context["cl"].result_list
    assert list(listed) == newest_first

    page = staff_client.get(f"/admin/payments/paymentsession/{session.pk}/change/")
    inline = next(
        f for f in page.context["inline_admin_formsets"] if f.formset.model is PaymentAudit
    )
    assert [form.instance for form in inline.formset.forms] == newest_first


def test_every_trail_admin_and_inline_is_ordered_newest_first():
    for model_admin in admin.site._registry.values():
        if isinstance(model_admin, AppendOnlyAdmin):
            ordering = model_admin.get_ordering(None) or model_admin.model._meta.ordering
            assert ordering and ordering[0].startswith("-"), model_admin
        for inline in model_admin.inlines:
            if issubclass(inline, ReadOnlyInline):
                assert inline.ordering and inline.ordering[0].startswith("-"), inline


# No Save where nothing can be saved -------------------------------------------------------


def _has_editable_fields(context) -> bool:
    if context["adminform"].form.fields:
        return True
    return any(
        f.has_add_permission
        or any(
            not field.widget.is_hidden for form in f.formset.forms for field in form.fields.values()
        )
        for f in context["inline_admin_formsets"]
    )


def test_read_only_change_pages_show_no_save_button(staff_client, test_purpose, plans):  # noqa: F811
    """Every admin with an object to open: a page where nothing can be changed has no Save
    button (the actions stay); a page with something to change keeps it."""
    now = timezone.now()
    kiosk_session()
    subscription_activate_manually(
        user=UserFactory(), plan=plans["usd"], days=3, actor=staff_client.user, reason="test"
    )
    alert_raise(code="test.admin", message="Something needs a person")
    WebhookDeliveryFactory(status=DeliveryStatus.DEAD)
    WebhookRefusalFactory(window_start=now, first_at=now, last_at=now)
    PeriodicJob.objects.get_or_create(
        name="test-job", defaults={"every_seconds": 60, "next_due_at": now + timedelta(minutes=1)}
    )
    WorkerHeartbeatFactory(worker_id="w-test", hostname="node", pid=1)
    CouponFactory()

    read_only, editable = set(), set()
    for model in admin.site._registry:
        obj = model._default_manager.order_by("pk").first()
        if obj is None or model._meta.app_label not in CONFIRMA_APPS:
            continue
        page = staff_client.get(
            f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/change/"
        )
        assert page.status_code == 200, model
        has_save = 'name="_save"' in page.content.decode()
        if _has_editable_fields(page.context):
            editable.add(model)
            assert has_save, model
        else:
            read_only.add(model)
            assert not has_save, model
            assert 'name="_continue"' not in page.content.decode()
            assert 'name="_addanother"' not in page.content.decode()
    assert {
        PaymentSession,
        PaymentAudit,
        WebhookDelivery,
        WebhookRefusal,
        PeriodicJob,
        WorkerHeartbeat,
        Subscription,
        SubscriptionEvent,
    } <= read_only
    assert CouponFactory._meta.model in editable


# Labels, not codes ------------------------------------------------------------------------


def test_audit_list_shows_status_labels_not_codes(staff_client, test_purpose):  # noqa: F811
    session = kiosk_session()
    reason = {"apply": "1", "reason": "checked"}
    run_action(
        staff_client, "/admin/payments/paymentsession/", "confirm_manually", [session], **reason
    )
    staff_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "pt-br"
    html = staff_client.get(
        "/admin/payments/paymentaudit/", HTTP_ACCEPT_LANGUAGE="pt-br"
    ).content.decode()
    with translation.override("pt-br"):
        completed = str(PaymentStatus.COMPLETED.label)
    assert completed != "completed"
    assert f'<td class="field-status_after">{completed}</td>' in html
    assert '<td class="field-status_after">completed</td>' not in html
