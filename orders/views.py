"""Cashier dashboard, waiter page, kitchen board, and the checked proof file view."""

import uuid

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.errors import ConfirmaError
from core.pages import render_page
from core.roles import role_required
from core.throttling import throttle_page
from orders.errors import OrderError
from orders.forms import OrderEntryForm
from orders.models import PaymentMethod
from orders.selectors import (
    order_entry_choices,
    orders_awaiting_verification,
    orders_for_kitchen,
    orders_for_waiter,
    proof_get,
)
from orders.services import (
    order_advance,
    order_create,
    order_reject,
    order_verify,
    proof_storage,
    proof_submit,
    proof_viewable_by,
)


@role_required("cashier")
@require_GET
def cashier_dashboard(request):
    return render_page(
        request,
        "orders/cashier.html",
        "orders/_cashier_list.html",
        {"orders": orders_awaiting_verification()},
    )


@role_required("cashier")
@require_POST
def cashier_decide(request, order_id: int, decision: str):
    try:
        if decision == "approve":
            order_verify(order_id=order_id, cashier=request.user)
        elif decision == "reject":
            order_reject(
                order_id=order_id, cashier=request.user, reason=request.POST.get("reason", "")
            )
        else:
            raise Http404
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    return redirect("cashier")


def _waiter_page(request):
    return render_page(
        request,
        "orders/waiter.html",
        "orders/_waiter_list.html",
        {"groups": orders_for_waiter(request.user), "methods": PaymentMethod.choices},
    )


@role_required("waiter")
@require_GET
def waiter_page(request):
    return _waiter_page(request)


def _waiter_upload_refused(request, message: str, order_id: int):
    messages.error(request, message)
    return _waiter_page(request)


@role_required("waiter")
@require_POST
@throttle_page("proof_upload", refused=_waiter_upload_refused)
def waiter_upload(request, order_id: int):
    try:
        proof_submit(
            order_id=order_id,
            upload=request.FILES.get("file"),
            method=request.POST.get("method", ""),
            actor=request.user,
        )
        messages.success(request, "✓")
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    return redirect("waiter")


@role_required("waiter")
@require_http_methods(["GET", "POST"])
def waiter_new_order(request):
    """The waiter's phone page to take an order; a refused order comes back with its errors
    (status 400) and nothing stored."""
    choices = order_entry_choices()
    if request.method != "POST":
        form = OrderEntryForm(initial={"form_key": uuid.uuid4()}, **choices)
        return render(request, "orders/new_order.html", _entry_context(form))
    form = OrderEntryForm(request.POST, **choices)
    if form.is_valid():
        try:
            order = order_create(
                actor=request.user,
                table_id=form.cleaned_data["table"],
                items=form.items(),
                amount=form.cleaned_data["amount"],
                notes=form.cleaned_data["notes"],
                form_key=form.cleaned_data["form_key"],
            )
        except OrderError as exc:
            field = exc.details.get("field")
            form.add_error(field if field in form.fields else None, exc.message)
        else:
            messages.success(
                request,
                _("Order #%(id)s for %(table)s sent to the kitchen.")
                % {"id": order.pk, "table": order.table.name},
            )
            return redirect("waiter")
    return render(request, "orders/new_order.html", _entry_context(form), status=400)


def _entry_context(form) -> dict:
    return {"form": form, "currency": settings.ORDERS_CURRENCY}


@login_required
@require_POST
def order_step(request, order_id: int, to: str):
    try:
        order_advance(order_id=order_id, to=to, actor=request.user)
    except ConfirmaError as exc:
        messages.error(request, exc.message)
    return redirect(
        request.POST.get("back")
        if request.POST.get("back") in ("/kitchen/", "/waiter/")
        else "home"
    )


@role_required("kitchen")
@require_GET
def kitchen_board(request):
    return render_page(
        request,
        "orders/kitchen.html",
        "orders/_kitchen_list.html",
        {"orders": orders_for_kitchen()},
    )


@login_required
@require_GET
def proof_file(request, proof_id: int):
    """The proof file, only for staff, cashiers and the order's waiter; never public."""
    proof = proof_get(proof_id=proof_id)
    if proof is None or not proof_viewable_by(proof, request.user):
        raise Http404
    try:
        handle = proof_storage().open(proof.file.name, "rb")
    except FileNotFoundError:
        raise Http404 from None
    extension = proof.file.name.rsplit(".", 1)[-1]
    response = FileResponse(
        handle, content_type=proof.content_type, filename=f"proof-{proof.pk}.{extension}"
    )
    response["Content-Disposition"] = response["Content-Disposition"].replace(
        "attachment", "inline"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    response["Cache-Control"] = "private, no-store"
    response["X-Frame-Options"] = "SAMEORIGIN"
    return response
