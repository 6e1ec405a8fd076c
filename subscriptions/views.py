"""Machine pages (list, activation, controller simulator) and plan pages (plans, checkout,
return page, my subscription)."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from core.errors import ConfirmaError
from core.pages import render_page
from core.throttling import throttle_check, throttle_message, throttle_page
from notifications.selectors import event_latest_id
from payments.errors import InsufficientCredit
from payments.services import wallet_account_get
from subscriptions.checkout import plans_for_checkout
from subscriptions.errors import PixPaymentWaiting
from subscriptions.models import Machine
from subscriptions.selectors import (
    billing_payment_find,
    billing_recent_payments,
    machine_active_get,
    machine_controller_state,
    machine_options,
    machine_state_for,
    machines_with_status,
    subscription_get,
    subscription_history,
)
from subscriptions.selectors import billing_return_state as return_state_of
from subscriptions.services.machines import (
    machine_for_device_token,
    machine_payment_cancel,
    machine_session_buy,
)
from subscriptions.services.plans import subscription_checkout


@login_required
@require_GET
def machine_list(request):
    return render(request, "subscriptions/machines.html", {"machines": machines_with_status()})


def _state_context(request, machine) -> dict:
    return {
        "state": machine_state_for(machine=machine, user=request.user),
        "account": wallet_account_get(user=request.user),
        "options": machine_options(machine=machine),
        "key": uuid.uuid4().hex,
        "simulate": settings.FAKE_PROVIDERS,
    }


def _machine_or_404(code: str) -> Machine:
    machine = machine_active_get(code=code)
    if machine is None:
        raise Http404
    return machine


def _machine_page(request, machine):
    return render_page(
        request,
        "subscriptions/machine.html",
        "subscriptions/_machine_state.html",
        {"machine": machine, **_state_context(request, machine)},
    )


@login_required
@require_GET
def machine_page(request, code: str):
    """The machine and its state block (re-fetched on every event and after a reconnect)."""
    return _machine_page(request, _machine_or_404(code))


def _machine_start_refused(request, message: str, code: str):
    machine = _machine_or_404(code)
    messages.error(request, message)
    return _machine_page(request, machine)


@login_required
@require_POST
@throttle_page("payment_session_create", refused=_machine_start_refused)
def machine_start(request, code: str):
    try:
        minutes = int(request.POST.get("minutes", ""))
    except ValueError:
        messages.error(request, _("Choose one of the machine's time options."))
        return redirect("machine", code=code)
    try:
        machine_session_buy(
            customer=request.user,
            machine_code=code,
            minutes=minutes,
            method=request.POST.get("method", ""),
            idempotency_key=request.POST.get("key") or uuid.uuid4().hex,
        )
    except InsufficientCredit as exc:
        messages.error(
            request,
            format_html(
                '{} <a href="{}">{}</a>', exc.message, reverse("payments"), _("Top up your credit")
            ),
        )
    except PixPaymentWaiting as exc:
        messages.error(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                exc.message,
                reverse("machine", args=[exc.machine.code]),
                _("Pay or cancel it"),
            ),
        )
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    return redirect("machine", code=code)


@login_required
@require_POST
def machine_cancel(request, code: str):
    """The customer cancels their own PIX payment for this machine; the machine is free at
    once. A payment the provider says was already paid is not cancelled: the machine
    starts, and the customer is told so."""
    try:
        machine_payment_cancel(
            customer=request.user,
            machine_code=code,
            reference=request.POST.get("reference", ""),
        )
    except ConfirmaError as exc:
        if exc.code == "payment_arrived":
            messages.success(request, exc.message)
        else:
            messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _(
                "Payment cancelled; the machine is no longer held for you. Do not pay that PIX "
                "code: a payment that arrives anyway will be refunded."
            ),
        )
    return redirect("machine", code=code)


def _controller_machine(request) -> tuple[Machine, str]:
    token = request.GET.get("token", "")
    machine = machine_for_device_token(token)
    if machine is None:
        raise Http404
    return machine, token


@require_GET
def controller(request):
    """What a machine's controller would do, on screen: on and off as events arrive."""
    machine, token = _controller_machine(request)
    return render_page(
        request,
        "subscriptions/controller.html",
        "subscriptions/_controller_state.html",
        {
            "machine": machine,
            "usage": machine_controller_state(machine=machine),
            "events_token": token,
            "events_since": event_latest_id(),
        },
    )


# --- Plan subscriptions ----------------------------------------------------------------------


def _plans_page(request):
    """The plans, each with the price the customer would pay (after the coupon typed in its
    form: the coupon field re-fetches this page with `?plan=&coupon=`) and what paying
    would do to their current plan."""
    coupons, coupon_refused = {}, ""
    if request.method == "GET" and request.GET.get("coupon", "").strip():
        # Each check tells whether a code exists: counted like checkouts (which tell the
        # same), on a counter of its own so that looking never uses up paying.
        retry_after = throttle_check(
            request, "payment_session_create", ident=f"coupon-check:{request.user.pk}"
        )
        if retry_after is None:
            coupons = {request.GET.get("plan", "")[:40]: request.GET["coupon"]}
        else:
            coupon_refused = throttle_message(retry_after)
    return render(
        request,
        "subscriptions/plans.html",
        {
            "plans": plans_for_checkout(user=request.user, coupons=coupons),
            "coupon_plan": request.GET.get("plan", "")[:40],
            "coupon_refused": coupon_refused,
            "subscription": subscription_get(user=request.user),
            "key": uuid.uuid4().hex,
        },
    )


@login_required
@require_GET
def plans(request):
    return _plans_page(request)


def _checkout_refused(request, message: str):
    messages.error(request, message)
    return _plans_page(request)


@login_required
@require_POST
@throttle_page("payment_session_create", refused=_checkout_refused)
def checkout(request):
    """Open (or, for the same form, reopen) a payment and send the customer to the
    provider's page."""
    try:
        session = subscription_checkout(
            user=request.user,
            plan_code=request.POST.get("plan", "")[:40],
            provider=request.POST.get("provider", "")[:20],
            idempotency_key=request.POST.get("key") or uuid.uuid4().hex,
            coupon_code=request.POST.get("coupon", "").strip()[:40],
        )
    except ConfirmaError as exc:
        messages.error(request, exc.message)
        return redirect("billing")
    target = (session.provider_data or {}).get("redirect_url")
    if not target:
        return redirect(f"{reverse('billing-return')}?reference={session.reference}")
    return redirect(target)


def _return_context(request) -> dict:
    session = billing_payment_find(user=request.user, params=request.GET)
    context = {"session": session, "subscription": subscription_get(user=request.user)}
    if session is None:
        context["recent"] = billing_recent_payments(user=request.user)
    else:
        context["state"] = return_state_of(session=session)
        context["cancelled"] = request.GET.get("cancelled") == "1"
    return context


@login_required
@require_GET
def billing_return(request):
    """Where providers send the customer back. Finds the payment by whatever the provider
    appended and shows its live state; never a dead end."""
    return render_page(
        request,
        "subscriptions/billing_return.html",
        "subscriptions/_billing_return_state.html",
        _return_context(request),
    )


@login_required
@require_GET
def my_subscription(request):
    return render(
        request,
        "subscriptions/my_subscription.html",
        {
            "subscription": subscription_get(user=request.user),
            "history": subscription_history(user=request.user),
        },
    )
