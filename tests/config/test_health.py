from datetime import timedelta

import pytest
from django.utils import timezone

from config.models import WorkerHeartbeat
from config.services import worker_heartbeat_beat
from tests.conftest import _reset_channel_layers
from tests.factories import UserFactory, WebhookDeliveryFactory

pytestmark = pytest.mark.django_db

TOKEN = "health-token-for-tests-0123456789abcdef"


@pytest.fixture
def monitor(client, settings):
    """A client that holds the health token, as monitoring does."""
    settings.HEALTH_TOKEN = TOKEN
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def test_healthz_ok_with_database_layer_and_fresh_worker(monitor, memory_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=3)
    response = monitor.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["channel_layer"]["ok"] and body["worker"]["ok"]


@pytest.mark.redis
def test_healthz_ok_on_redis(monitor, redis_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    response = monitor.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["channel_layer"]["backend"] == "RedisPubSubChannelLayer"


def test_healthz_503_without_worker_heartbeat(monitor, memory_layer):
    response = monitor.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"] == {
        "ok": False,
        "error": "no_heartbeat",
        "max_age_seconds": 30,
    }


def test_healthz_503_when_worker_heartbeat_is_stale(monitor, memory_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(minutes=5))
    response = monitor.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"]["ok"] is False


def test_healthz_503_when_redis_configured_but_unreachable(monitor, settings):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": "redis://127.0.0.1:1/0", "socket_connect_timeout": 2}]
            },
        }
    }
    _reset_channel_layers()
    try:
        response = monitor.get("/healthz")
    finally:
        _reset_channel_layers()
    assert response.status_code == 503
    body = response.json()
    assert body["channel_layer"]["ok"] is False
    assert body["database"]["ok"] is True
    assert body["status"] == "unavailable"


# --- Who sees what ----------------------------------------------------------------------


def test_anonymous_gets_the_status_alone(client, settings, memory_layer):
    settings.HEALTH_TOKEN = TOKEN
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]


def test_anonymous_status_is_still_a_real_check(client, memory_layer):
    """No worker heartbeat: the minimal answer says unavailable, with nothing else."""
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_staff_session_gets_the_details(client, memory_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    client.force_login(UserFactory(roles=["staff"]))
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["database"]["vendor"] and body["channel_layer"]["backend"]
    assert body["worker"]["alive"] == 1


def test_other_roles_get_the_status_alone(client, memory_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    client.force_login(UserFactory(roles=["cashier", "operator"]))
    assert client.get("/healthz").json() == {"status": "ok"}


def test_the_health_token_gets_the_details(monitor, memory_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    body = monitor.get("/healthz").json()
    assert set(body) == {"status", "database", "channel_layer", "worker", "webhooks"}
    assert body["webhooks"] == {"ok": True, "waiting": 0, "oldest_seconds": 0.0}


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        "Bearer ",
        f"Token {TOKEN}",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
def test_a_wrong_token_gets_the_status_alone(client, settings, memory_layer, header):
    settings.HEALTH_TOKEN = TOKEN
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    response = client.get("/healthz", headers={"Authorization": header})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_no_token_configured_means_no_token_works(client, settings, memory_layer):
    settings.HEALTH_TOKEN = ""
    response = client.get("/healthz", headers={"Authorization": "Bearer "})
    assert response.json() == {"status": "unavailable"}


def test_a_webhook_backlog_older_than_the_setting_is_unhealthy_and_alerted(
    monitor, memory_layer, settings
):
    from django.core.management import call_command

    from notifications.models import Alert
    from payments.models import WebhookDelivery

    settings.WEBHOOK_BACKLOG_ALERT_SECONDS = 60
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    stuck = WebhookDeliveryFactory(
        provider="kiosk",
        signature_valid=True,
        received_at=timezone.now() - timedelta(seconds=90),
        # Claimed by a worker whose lease has not ended: waiting, and not retried now.
        next_attempt_at=timezone.now() + timedelta(minutes=5),
        claimed_by="gone",
    )
    response = monitor.get("/healthz")
    assert response.status_code == 503
    webhooks = response.json()["webhooks"]
    assert (webhooks["ok"], webhooks["waiting"]) == (False, 1)
    assert webhooks["oldest_seconds"] >= 90
    with pytest.raises(SystemExit):  # exit 1: nothing was retried, but not all is well
        call_command("retry_webhooks")
    assert Alert.objects.filter(code="webhook.backlog").count() == 1
    WebhookDelivery.objects.filter(pk=stuck.pk).update(status="processed")
    assert monitor.get("/healthz").status_code == 200
