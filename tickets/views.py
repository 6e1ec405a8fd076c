"""Kiosk (anonymous, kiosk token), operator panel, display board and integration status."""

import contextlib
import functools
import uuid

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from core.errors import ConfirmaError
from core.pages import render_page
from core.roles import role_required
from core.throttling import throttle_page
from notifications.audiences import audience_display
from notifications.errors import InvalidToken
from notifications.selectors import event_latest_id
from notifications.tokens import audience_token_read
from payments.apis import payment_token
from payments.models import Provider
from payments.selectors import payment_session_get
from payments.services import payment_session_create
from payments.services.simulation import payment_simulate
from tickets.cpf import cpf_valid
from tickets.repairs import ticket_missing_create
from tickets.selectors import (
    integration_health,
    service_active_get,
    services_active,
    ticket_for_session,
    tickets_at_desks,
    tickets_recently_called,
    tickets_waiting_by_service,
)
from tickets.services import (
    kiosk_for_token,
    ticket_complete,
    ticket_no_show,
    ticket_recall,
    ticket_start,
)
from tickets.services.desks import desk_call_next, operator_desk_set, ticket_reprint_request
from tickets.services.desks import operator_desk as desk_of

# --- Kiosk -----


class DetailsForm(forms.Form):
    customer_name = forms.CharField(label=_("Your name (optional)"), max_length=60, required=False)
    cpf = forms.CharField(label=_("CPF (optional)"), max_length=14, required=False)
    method = forms.ChoiceField(choices=[("pix", "PIX"), ("card", _("Card terminal"))])
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def clean_cpf(self):
        cpf = self.cleaned_data["cpf"].strip()
        if cpf and not cpf_valid(cpf):
            raise forms.ValidationError(_("This CPF is not valid."))
        return cpf


def _kiosk(request):
    kiosk = kiosk_for_token(request.GET.get("token", ""))
    if kiosk is None:
        raise Http404
    return kiosk


def _kiosk_required(view):
    """Run `view` only for an active kiosk's token, found in `request.kiosk`; any other
    token gets 404 before anything below (a rate limit among them) counts the request."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        request.kiosk = _kiosk(request)
        return view(request, *args, **kwargs)

    return wrapper


def _kiosk_throttle_key(request, *args, **kwargs) -> str:
    """Kiosks count each on their own: the kiosks of a store usually share one address,
    and each serves a queue of customers."""
    return f"kiosk:{request.kiosk.pk}"


def _kiosk_context(request, kiosk, **extra) -> dict:
    return {"kiosk": kiosk, "kiosk_token": request.GET["token"], **extra}


@require_GET
def kiosk_home(request):
    kiosk = _kiosk(request)
    return render(
        request,
        "tickets/kiosk_home.html",
        _kiosk_context(request, kiosk, services=services_active()),
    )


def _ticket_language() -> str:
    """The kiosk page's language, which the ticket's printed words use."""
    language = get_language()
    return language if language in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def _kiosk_service_page(request, kiosk, service, form):
    return render(
        request,
        "tickets/kiosk_service.html",
        _kiosk_context(request, kiosk, service=service, form=form),
    )


def _kiosk_service_refused(request, message: str, service_id: int):
    """The details form again, with what the customer typed and the refusal above it."""
    service = service_active_get(service_id=service_id)
    if service is None:
        raise Http404
    form = DetailsForm(request.POST)
    form.add_error(None, message)
    return _kiosk_service_page(request, request.kiosk, service, form)


@_kiosk_required
@throttle_page("kiosk_ticket", refused=_kiosk_service_refused, key=_kiosk_throttle_key)
def kiosk_service(request, service_id: int):
    kiosk = request.kiosk
    service = service_active_get(service_id=service_id)
    if service is None:
        raise Http404
    form = DetailsForm(request.POST or None, initial={"key": uuid.uuid4().hex, "method": "pix"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        provider = Provider.MERCADOPAGO if data["method"] == "pix" else Provider.KIOSK
        try:
            session = payment_session_create(
                user=None,
                purpose="ticket",
                provider=provider,
                idempotency_key=data["key"],
                params={
                    "service": service.pk,
                    "customer_name": data["customer_name"],
                    "cpf": data["cpf"],
                    "kiosk": kiosk.pk,
                    "language": _ticket_language(),
                },
            ).session
        except ConfirmaError as exc:
            form.add_error(None, exc.message)
        else:
            url = reverse("kiosk-wait", args=[session.reference])
            return redirect(f"{url}?token={request.GET['token']}")
    return _kiosk_service_page(request, kiosk, service, form)


def _kiosk_session(request, reference: str):
    kiosk = _kiosk(request)
    session = payment_session_get(reference=reference, purpose="ticket")
    if session is None or session.params.get("kiosk") != kiosk.pk:
        raise Http404
    ticket = ticket_for_session(session=session)
    return kiosk, session, ticket


@require_GET
def kiosk_wait(request, reference: str):
    kiosk, session, ticket = _kiosk_session(request, reference)
    return render_page(
        request,
        "tickets/kiosk_wait.html",
        "tickets/_kiosk_state.html",
        _kiosk_context(
            request,
            kiosk,
            session=session,
            ticket=ticket,
            simulate=settings.FAKE_PROVIDERS,
            events_token=payment_token(session),
            events_since=event_latest_id(),
            reset_seconds=settings.KIOSK_RESET_SECONDS,
        ),
    )


@require_POST
def kiosk_simulate(request, reference: str):
    _kiosk, session, _ticket = _kiosk_session(request, reference)
    with contextlib.suppress(ConfirmaError):
        payment_simulate(session=session, action=request.POST.get("action", "approve"))
    url = reverse("kiosk-wait", args=[reference])
    return redirect(f"{url}?token={request.GET.get('token', '')}")


# --- Operator panel -----


def _panel_context(request) -> dict:
    return {
        "queues": tickets_waiting_by_service(),
        "at_desks": tickets_at_desks(),
        "desk": desk_of(operator=request.user),
        "reprint_reasons": REPRINT_REASONS,
    }


# Suggestions for the reprint reason (the operator may type any other).
REPRINT_REASONS = (
    _("Paper jammed or torn"),
    _("Printout unreadable"),
    _("Customer lost the ticket"),
)


@role_required("operator")
@require_GET
def operator_panel(request):
    return render_page(
        request, "tickets/operator.html", "tickets/_operator_panel.html", _panel_context(request)
    )


@role_required("operator")
@require_POST
def operator_desk(request):
    operator = request.user
    try:
        desk = operator_desk_set(operator=operator, desk=request.POST.get("desk", ""))
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("You are at desk %(desk)s.") % {"desk": desk})
    return redirect("operator")


@role_required("operator")
@require_POST
def operator_call(request):
    operator = request.user
    service = request.POST.get("service", "")
    try:
        ticket = desk_call_next(
            operator=operator,
            desk=desk_of(operator=operator),
            service_id=int(service) if service.isdigit() else None,
        )
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    else:
        if ticket is None:
            messages.info(request, _("Nobody is waiting."))
        else:
            messages.success(
                request,
                _("%(code)s called to desk %(desk)s.") % {"code": ticket.code, "desk": ticket.desk},
            )
    return redirect("operator")


ACTIONS = {
    "recall": (ticket_recall, _("%(code)s called again.")),
    "start": (ticket_start, _("%(code)s: service started.")),
    "complete": (ticket_complete, _("%(code)s completed.")),
    "no_show": (ticket_no_show, _("%(code)s marked as no-show.")),
}


@role_required("operator")
@require_POST
def operator_ticket(request, ticket_id: int, action: str):
    operator = request.user
    if action != "reprint" and action not in ACTIONS:
        raise Http404
    try:
        if action == "reprint":
            ticket = ticket_reprint_request(
                ticket_id=ticket_id, actor=operator, reason=request.POST.get("reason", "")
            ).ticket
            done = _("%(code)s sent to the printer again.")
        else:
            step, done = ACTIONS[action]
            ticket = step(ticket_id=ticket_id, operator=operator)
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done % {"code": ticket.code})
    return redirect("operator")


# --- Display board -----


def _display_token(request) -> str:
    token = request.GET.get("token", "")
    try:
        audiences = audience_token_read(token)
    except InvalidToken:
        raise Http404 from None
    if audience_display(settings.TICKET_DISPLAY) not in audiences:
        raise Http404
    return token


@require_GET
def display_board(request):
    token = _display_token(request)
    return render_page(
        request,
        "tickets/display.html",
        "tickets/_display_list.html",
        {
            "called": tickets_recently_called(),
            "events_token": token,
            "events_since": event_latest_id(),
            "display_token": token,
        },
    )


# --- Integration status (staff) -----


@role_required("staff")
@require_GET
def integration_page(request):
    return render_page(
        request,
        "tickets/integration.html",
        "tickets/_integration.html",
        {"health": integration_health()},
    )


# Where the issues list's buttons come back to: this page, or the operations page that
# includes the same list.
FIX_RETURN = {"integration": "integration", "operations": "operations"}


@role_required("staff")
@require_POST
def integration_fix(request):
    """A fix button of the issues list: make the missing ticket of one paid session."""
    staff = request.user
    reference = request.POST.get("reference", "")[:64]
    try:
        ticket = ticket_missing_create(
            reference=reference,
            actor=staff,
            reason=request.POST.get("reason", "")[:2000],
            accept_review=request.POST.get("accept") == "1",
        )
    except ConfirmaError as exc:
        messages.error(request, f"{reference}: {exc.message}")
    else:
        messages.success(
            request,
            _("%(code)s made for %(ref)s and sent to the printer.")
            % {"code": ticket.code, "ref": reference},
        )
    return redirect(FIX_RETURN.get(request.POST.get("back", ""), "integration"))
