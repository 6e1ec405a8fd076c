from django_tasks import task

from notifications.services import event_publish


@task()
def event_publish_task(*, audience: list[str], type: str, payload: dict) -> list[int]:
    """Publish from the worker (used by staff announcements and to prove cross-process
    delivery); returns the new event ids."""
    return [event.id for event in event_publish(audience=audience, type=type, payload=payload)]
