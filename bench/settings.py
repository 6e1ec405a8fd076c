"""Bench-only settings: the product's, with the baseline endpoints mounted beside its URLs.

Never used by the product itself; the harness starts the serving layout with
DJANGO_SETTINGS_MODULE=bench.settings. BENCH_CHANNEL_LAYER=pubsub swaps the channel layer
for channels_redis's pub/sub one, to measure that change before making it in the product
(`python -m bench --layer pubsub`).
"""

import os

from config.settings import *  # noqa: F403
from config.settings import REDIS_URL, env

ROOT_URLCONF = "bench.urls"

if os.environ.get("BENCH_CHANNEL_LAYER") == "pubsub" and REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL}],
                "prefix": env.str("CHANNELS_PREFIX", default="confirma"),
            },
        }
    }
