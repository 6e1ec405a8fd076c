"""Baseline endpoints: the least work each benchmark's path could do, served by the same
processes and configuration as the product. Mounted only by bench.urls."""

import json
import time

from django.db import connection
from django.http import HttpResponseBadRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from notifications.audiences import audience_role, audience_validate
from notifications.services import events_push

# Baseline frames carry negative ids, so clients never mistake one for an event of the log
# (the consumer de-duplicates by id, and reads the log past the highest id it has sent).
TABLE = "bench_hit"


@csrf_exempt
def insert(request):
    """Read the body, one INSERT, one COMMIT (autocommit), a small JSON answer."""
    body = request.read(64 * 1024)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (size, received_at) VALUES (%s, now())",  # noqa: S608
            [len(body)],
        )
    return JsonResponse({"status": "ok"})


@csrf_exempt
def group_send(request):
    """Only push one frame to an audience's group, as Confirma pushes an event after
    commit (`events_push`): `?key=<n>&audience=role:operator`."""
    key = request.GET.get("key", "")
    audience = request.GET.get("audience", audience_role("operator"))
    if not key.isdigit() or len(key) > 12:
        return HttpResponseBadRequest("key")
    audience_validate(audience)
    frame = {
        "id": -1 - int(key),
        "type": "bench.ping",
        "payload": {"reference": key},
        "at": time.time(),
    }
    # The same sending path as Confirma's pushes (one long-lived loop per process), so
    # the comparison is of the work around the push, not of how it reaches Redis.
    events_push([(audience, frame)])
    return JsonResponse({"status": "sent"})


@csrf_exempt
def print_enqueue(request):
    """Queue a task that sends the posted bytes to `?printer=tcp://…` (what printing a
    ticket costs without the ticket)."""
    from bench.tasks import bench_print

    data = json.loads(request.body)
    bench_print.enqueue(url=data["printer"], data_hex=data["data"])
    return JsonResponse({"status": "queued"})
