from django_tasks import task

from payments.services.deliveries import delivery_retry


@task()
def webhook_delivery_retry(*, delivery_id: int) -> str:
    """Retry a failed delivery now, if it is still failed, due and nobody is at it (the
    webhook workers take due retries by themselves; this is for a person or a script)."""
    return delivery_retry(delivery_id=delivery_id)
