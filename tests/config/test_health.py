from datetime import timedelta

import pytest
from django.utils import timezone

from config.models import WorkerHeartbeat
from config.services import worker_heartbeat_beat
from tests.conftest import _reset_channel_layers

pytestmark = pytest.mark.django_db


def test_healthz_ok_with_database_layer_and_fresh_worker(client, memory_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=3)
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["channel_layer"]["ok"] and body["worker"]["ok"]


@pytest.mark.redis
def test_healthz_ok_on_redis(client, redis_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["channel_layer"]["backend"] == "RedisPubSubChannelLayer"


def test_healthz_503_without_worker_heartbeat(client, memory_layer):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"] == {
        "ok": False,
        "error": "no_heartbeat",
        "max_age_seconds": 30,
    }


def test_healthz_503_when_worker_heartbeat_is_stale(client, memory_layer):
    worker_heartbeat_beat(worker_id="w1", tasks_run=0)
    WorkerHeartbeat.objects.update(last_seen=timezone.now() - timedelta(minutes=5))
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["worker"]["ok"] is False


def test_healthz_503_when_redis_configured_but_unreachable(client, settings):
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
        response = client.get("/healthz")
    finally:
        _reset_channel_layers()
    assert response.status_code == 503
    body = response.json()
    assert body["channel_layer"]["ok"] is False
    assert body["database"]["ok"] is True
    assert body["status"] == "fail"
