import hmac

from django.conf import settings
from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views import defaults
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from config.health import integration_status
from config.selectors import system_health
from core.navigation import pages_for
from core.pages import render_page
from core.roles import has_role, role_required, user_roles
from core.text import text_storable
from payments.services.monitor import gap_get, gaps_repair


def page_not_found(request, exception):
    """Django's 404 page, but the API's JSON error under /api/ (e.g. for an order id that
    is not a number, which no URL pattern matches)."""
    if request.path_info.startswith("/api/"):
        body = {"error": {"code": "not_found", "message": _("Not found."), "details": {}}}
        return JsonResponse(body, status=404)
    return defaults.page_not_found(request, exception)


@require_GET
def favicon(request):
    """Browsers ask for /favicon.ico on every page: send them to the logo."""
    return redirect(static("img/confirma.svg"))


@require_GET
def home(request):
    return render(
        request,
        "config/home.html",
        {"pages": pages_for(request.user), "roles": sorted(user_roles(request.user))},
    )


def _health_details_allowed(request) -> bool:
    """Staff (by session) and holders of HEALTH_TOKEN (`Authorization: Bearer …`)."""
    if has_role(request.user, "staff"):
        return True
    token = settings.HEALTH_TOKEN
    scheme, _space, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def healthz(request):
    """Database, channel layer and worker heartbeat: 200 when all are fine, else 503.

    Everyone gets the status alone; which parts exist and how they fail is for staff and
    for monitoring that holds HEALTH_TOKEN."""
    health = system_health()
    ok = health["status"] == "ok"
    body = {"status": "ok" if ok else "unavailable"}
    if _health_details_allowed(request):
        body = {**health, **body}
    return JsonResponse(body, status=200 if ok else 503)


@role_required("staff")
@never_cache
@require_GET
def operations(request):
    """The integrations live: conversion and timings per purpose and provider, webhooks,
    open gaps with a repair button, printers, the worker."""
    return render_page(
        request,
        "config/operations.html",
        "config/_operations.html",
        {"status": integration_status()},
    )


@role_required("staff")
@require_POST
def operations_repair(request):
    """Re-run fulfilment of one paid-but-not-delivered payment (as the reconciler does)."""
    reference = request.POST.get("reference", "")[:64]
    gap = gap_get(reference=reference) if text_storable(reference) else None
    if gap is None:
        messages.info(request, _("Nothing to repair for %(ref)s.") % {"ref": reference})
        return redirect("operations")
    report = gaps_repair([gap])
    if reference in report.repaired:
        messages.success(request, _("%(ref)s repaired.") % {"ref": reference})
    else:
        error = report.failed.get(reference) or _("it needs a staff decision in the admin")
        messages.error(
            request, _("%(ref)s not repaired: %(error)s") % {"ref": reference, "error": error}
        )
    return redirect("operations")
