from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.navigation import pages_for
from config.roles import user_roles
from config.selectors import system_health


@require_GET
def home(request):
    return render(
        request,
        "config/home.html",
        {"pages": pages_for(request.user), "roles": sorted(user_roles(request.user))},
    )


@never_cache
@require_GET
def healthz(request):
    """Database, channel layer and worker heartbeat; 200 when all are fine, else 503."""
    health = system_health()
    return JsonResponse(health, status=200 if health["status"] == "ok" else 503)
