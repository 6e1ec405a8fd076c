"""Customer pages: my payments and wallet, top-up by PIX, one payment's live status."""

import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from core.errors import ConfirmaError
from core.pages import render_page
from core.roles import has_role
from core.throttling import throttle_page
from payments.models import PaymentSession
from payments.selectors import (
    payment_session_get,
    payment_sessions_recent,
    wallet_entries_recent,
)
from payments.services import payment_session_create, wallet_account_get
from payments.services.simulation import payment_simulate


class TopupForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"),
        min_value=settings.WALLET_TOPUP_MIN,
        max_value=settings.WALLET_TOPUP_MAX,
        decimal_places=2,
    )
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)


def _own_session(request, reference: str) -> PaymentSession:
    session = payment_session_get(reference=reference)
    if session is None or not (
        session.user_id == request.user.pk or has_role(request.user, "staff")
    ):
        raise Http404
    return session


def _home(request, amount=None):
    account = wallet_account_get(user=request.user)
    return render(
        request,
        "payments/home.html",
        {
            "account": account,
            "entries": wallet_entries_recent(account=account),
            "sessions": payment_sessions_recent(user=request.user),
            "form": TopupForm(initial={"key": uuid.uuid4().hex, "amount": amount}),
        },
    )


@login_required
@require_GET
def payments_home(request):
    return _home(request)


def _topup_refused(request, message: str):
    """The wallet page again, with the amount the customer typed."""
    messages.error(request, message)
    return _home(request, amount=request.POST.get("amount", "")[:20])


@login_required
@require_POST
@throttle_page("payment_session_create", refused=_topup_refused)
def topup(request):
    form = TopupForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("amount", []):
            messages.error(request, error)
        return redirect("payments")
    try:
        result = payment_session_create(
            user=request.user,
            purpose="wallet_topup",
            provider="mercadopago",
            amount=form.cleaned_data["amount"],
            idempotency_key=form.cleaned_data["key"],
        )
    except ConfirmaError as exc:
        messages.error(request, exc.message)
        return redirect("payments")
    return redirect("payment-detail", reference=result.session.reference)


@login_required
@require_GET
def payment_detail(request, reference: str):
    """The payment's live status; its status block is re-fetched when an event about this
    payment arrives."""
    session = _own_session(request, reference)
    return render_page(
        request,
        "payments/detail.html",
        "payments/_status.html",
        {
            "session": session,
            "simulate": settings.FAKE_PROVIDERS and session.is_open,
        },
    )


@login_required
@require_POST
def simulate(request, reference: str):
    session = _own_session(request, reference)
    try:
        payment_simulate(session=session, action=request.POST.get("action", ""))
        messages.info(request, _("Sent to the fake provider; the result arrives by webhook."))
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        return redirect(back)
    return redirect("payment-detail", reference=reference)
