"""Bench-only settings: the product's, with the baseline endpoints mounted beside its URLs.

Never used by the product itself; the harness starts the serving layout with
DJANGO_SETTINGS_MODULE=bench.settings. BENCH_CHANNEL_LAYER=core swaps the product's pub/sub
channel layer for channels_redis's queue-based one, to compare the two
(`python -m bench --layer core`).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL, env

ROOT_URLCONF = "bench.urls"
# The baselines are served as the webhooks are (config/wsgi.py): comparing the intake with a
# bare INSERT+COMMIT behind all the page middleware would flatter the intake.
WEBHOOK_PATH_PREFIXES = ["/webhooks/", "/bench/"]

if os.environ.get("BENCH_CHANNEL_LAYER") == "core" and REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 2}],
                "prefix": env.str("CHANNELS_PREFIX", default="confirma"),
                "capacity": 500,
                "expiry": 60,
            },
        }
    }
