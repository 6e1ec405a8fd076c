from django_tasks import task

from payments.models import DeliveryStatus, WebhookDelivery
from payments.services.webhooks import delivery_process


@task()
def webhook_delivery_retry(*, delivery_id: int) -> str:
    """Retry a failed delivery (scheduled with back-off by the webhook service)."""
    status = WebhookDelivery.objects.filter(pk=delivery_id).values_list("status", flat=True)
    if not status or status[0] != DeliveryStatus.FAILED:
        return "skipped"
    return str(delivery_process(delivery_id=delivery_id).status)
