"""Machine pages: the list, the activation page (PIX or credit), the controller simulator."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from config.errors import ConfirmaError
from notifications.selectors import event_latest_id
from payments.errors import InsufficientCredit
from payments.services import wallet_account_get
from subscriptions.models import Machine
from subscriptions.selectors import (
    machine_controller_state,
    machine_state_for,
    machines_with_status,
)
from subscriptions.services.machines import machine_for_device_token, machine_session_buy


@login_required
@require_GET
def machine_list(request):
    return render(request, "subscriptions/machines.html", {"machines": machines_with_status()})


def _state_context(request, machine) -> dict:
    return {
        "state": machine_state_for(machine=machine, user=request.user),
        "account": wallet_account_get(user=request.user),
        "options": machine.options.all(),
        "key": uuid.uuid4().hex,
        "simulate": settings.FAKE_PROVIDERS,
    }


@login_required
@require_GET
def machine_page(request, code: str):
    machine = get_object_or_404(Machine, code=code, active=True)
    return render(
        request,
        "subscriptions/machine.html",
        {"machine": machine, **_state_context(request, machine)},
    )


@login_required
@require_GET
def machine_state(request, code: str):
    """The state block alone; re-fetched on every event and after a reconnect."""
    machine = get_object_or_404(Machine, code=code, active=True)
    return render(
        request,
        "subscriptions/_machine_state.html",
        {"machine": machine, **_state_context(request, machine)},
    )


@login_required
@require_POST
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
    except ConfirmaError as exc:
        messages.error(request, exc.message)
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
    return render(
        request,
        "subscriptions/controller.html",
        {
            "machine": machine,
            "usage": machine_controller_state(machine=machine),
            "events_token": token,
            "events_since": event_latest_id(),
        },
    )


@require_GET
def controller_state(request):
    machine, _token = _controller_machine(request)
    return render(
        request,
        "subscriptions/_controller_state.html",
        {"machine": machine, "usage": machine_controller_state(machine=machine)},
    )
