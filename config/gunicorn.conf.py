"""Gunicorn settings for Confirma's HTTP traffic: pages, the API and provider webhooks.

WebSockets (/ws/) are served by daphne processes beside it; `scripts/serve.sh` starts both
and docs/performance.md explains the choice. Threaded workers (`gthread`): Django's views
are synchronous and wait on PostgreSQL most of the time, so threads overlap those waits
while the worker processes use the cores.

Environment:
  GUNICORN_BIND        address to listen on (default 127.0.0.1:8000)
  WEB_CONCURRENCY      worker processes (default: one per core)
  GUNICORN_THREADS     threads per worker (default 8)
  GUNICORN_TIMEOUT     seconds a silent worker lives before it is restarted (default 30)
  GUNICORN_ACCESS_LOG  "-" for access lines on stdout (default off: Django logs requests
                       that matter, and webhooks are logged in the database)
  FORWARDED_ALLOW_IPS  proxies trusted for X-Forwarded-* (default 127.0.0.1,::1)
"""

import os

wsgi_app = "config.wsgi:application"
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")]

worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
threads = int(os.environ.get("GUNICORN_THREADS") or 8)

# Webhook providers give up after a few seconds; a request running for 30 s means a stuck
# worker, which is replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT") or 30)
graceful_timeout = 20
keepalive = 5
# Replace workers now and then so that a slow leak never becomes an outage.
max_requests = 20000
max_requests_jitter = 2000

forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")

# The worker heartbeat file in memory, not on a disk that may stall under load.
SHM = "/dev/shm"  # noqa: S108 - gunicorn's documented choice for worker_tmp_dir
if os.path.isdir(SHM):
    worker_tmp_dir = SHM
