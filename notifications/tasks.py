from django_tasks import task

from notifications.alert_delivery import alert_deliver
from notifications.services.events import event_publish


@task()
def event_publish_task(*, audience: list[str], type: str, payload: dict) -> list[int]:
    """Publish from the worker (used by staff announcements and to prove cross-process
    delivery); returns the new event ids."""
    return [event.id for event in event_publish(audience=audience, type=type, payload=payload)]


@task()
def alert_webhook_send(*, alert_id: int, raised_at: str, attempt: int = 1, target: str = "") -> str:
    """Deliver one alert to the alert URL named by `target` (every URL when empty: a task
    queued before alerts had several URLs); a failed attempt queues the next one."""
    return alert_deliver(alert_id=alert_id, raised_at=raised_at, attempt=attempt, target=target)
