from django_tasks import task

from payments.services.retries import delivery_retry


@task()
def webhook_delivery_retry(*, delivery_id: int) -> str:
    """Retry a failed delivery (scheduled with back-off by the webhook service); skipped
    when it is no longer failed and due, or `retry_webhooks` is already at it."""
    return delivery_retry(delivery_id=delivery_id)
