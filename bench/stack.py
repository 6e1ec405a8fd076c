"""The system under test: `scripts/serve.sh` (the production layout) on free ports, with a
PostgreSQL database and a Redis prefix (and database number) of its own.

The database is created and migrated here and dropped at the end; the Redis keys under
the prefix are deleted. Processes run in their own session so they are stopped together.

The webhook workers are the one part the harness runs itself: serve.sh is started with
WEBHOOK_WORKERS=0 and the harness starts the same command (`manage.py process_webhooks
-v0`, as many as WEBHOOK_WORKERS says, default 2, as serve.sh) beside it, so that a
benchmark can stop them, let deliveries pile up, and time the workers alone.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379"
# A Redis database number of its own, so a stray key can never meet the product's.
DEFAULT_REDIS_DB = 13
# What serve.sh starts by default.
DEFAULT_WEBHOOK_WORKERS = 2
# What a TLS-terminating proxy adds; with DEBUG off Django redirects plain HTTP otherwise.
PROXY_HEADERS = {"X-Forwarded-Proto": "https", "Host": "127.0.0.1"}


def run_secrets() -> dict[str, str]:
    """Secrets shared by every stack of one run (and the harness's own Django)."""
    return {
        "secret_key": secrets.token_urlsafe(40),
        "kiosk_secret": "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_range(count: int) -> int:
    """The first of `count` consecutive free ports."""
    for _attempt in range(200):
        base = 20000 + secrets.randbelow(30000)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free port range")


class Stack:
    def __init__(
        self,
        *,
        workdir: Path,
        label: str,
        secret_key: str,
        kiosk_secret: str,
        daphne: int | None = None,
    ) -> None:
        self.workdir = workdir
        self.label = label
        token = secrets.token_hex(5)
        admin = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
            "DATABASE_URL", DEFAULT_DATABASE_URL
        )
        if not admin.startswith(("postgres://", "postgresql://")):
            raise SystemExit("bench needs PostgreSQL: set BENCH_DATABASE_URL=postgres://…")
        self.admin_url = urlparse(admin)._replace(path="/postgres").geturl()
        self.db_name = f"confirma_bench_{token}"
        redis = urlparse(os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL)
        redis_db = int(os.environ.get("BENCH_REDIS_DB", DEFAULT_REDIS_DB))
        self.redis_url = redis._replace(path=f"/{redis_db}").geturl()
        self.prefix = f"confirma-bench-{token}"
        self.http_port = free_port()
        self.daphne = daphne or os.cpu_count() or 2
        self.ws_port = free_port_range(self.daphne)
        (workdir / "static").mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.webhook_workers = int(os.environ.get("WEBHOOK_WORKERS") or DEFAULT_WEBHOOK_WORKERS)
        self.workers: list[subprocess.Popen] = []
        self._watch = None  # a connection of the harness's own, to see who listens
        self.log_path = workdir / f"serve-{label}.log"
        self.kiosk_secret = kiosk_secret
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BENCH_"))}
        for name in ("DATABASE_URL", "REDIS_URL", "CHANNELS_PREFIX", "CONFIRMA_TESTING"):
            keep.pop(name, None)
        self.env = {
            **keep,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "false",
            "SECRET_KEY": secret_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": urlparse(admin)._replace(path=f"/{self.db_name}").geturl(),
            "REDIS_URL": self.redis_url,
            "CHANNELS_PREFIX": self.prefix,
            "KIOSK_WEBHOOK_SECRET": self.kiosk_secret,
            "LOG_LEVEL": "WARNING",
            "STATIC_ROOT": str(workdir / "static"),
            "SKIP_PREPARE": "true",
            "PY": sys.executable,
            "HTTP_PORT": str(self.http_port),
            "WS_PORT": str(self.ws_port),
            "DAPHNE_PROCESSES": str(self.daphne),
            # The harness runs the webhook workers itself (see the module's docstring).
            "WEBHOOK_WORKERS": "0",
            # The harness plays the TLS proxy from several loopback addresses.
            "FORWARDED_ALLOW_IPS": "127.0.0.0/8,::1",
            "PYTHONUNBUFFERED": "1",
        }

    # --- addresses ------------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_urls(self) -> list[str]:
        return [f"ws://127.0.0.1:{self.ws_port + i}/ws/events/" for i in range(self.daphne)]

    @property
    def daphne_http_url(self) -> str:
        return f"http://127.0.0.1:{self.ws_port}"

    # --- database ---------------------------------------------------------------------------

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def create(self) -> None:
        self._admin(f'CREATE DATABASE "{self.db_name}"')
        self.manage("migrate", "--no-input", "-v0", timeout=300)
        import psycopg

        with psycopg.connect(self.env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE bench_hit (id bigserial PRIMARY KEY, size integer NOT NULL,"
                " received_at timestamptz NOT NULL)"
            )

    def manage(self, *args: str, timeout: float = 600, env: dict | None = None) -> str:
        done = subprocess.run(  # noqa: S603 - this interpreter, manage.py
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode not in (0, 1):
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    # --- processes -------------------------------------------------------------------------

    def start(self, *, extra_env: dict | None = None, wait: float = 90) -> None:
        """Start scripts/serve.sh and wait until gunicorn answers /healthz with 200 (the
        worker beats) and every daphne port accepts connections."""
        self.stop()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            ["bash", str(ROOT / "scripts" / "serve.sh")],  # noqa: S607
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._healthy() and all(self._accepts(self.ws_port + i) for i in range(self.daphne)):
                self.workers_start(
                    self.webhook_workers, wait=max(10.0, deadline - time.monotonic())
                )
                return
            time.sleep(0.25)
        tail = self.log_path.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"the serving layout did not come up:\n{tail}")

    # --- webhook workers ---------------------------------------------------------------------

    def listening(self) -> int:
        """How many webhook workers wait for wake-ups on this stack's Redis channel now
        (each subscribes before it first looks for work)."""
        import redis

        channel = f"{self.prefix}:deliveries"  # settings.WEBHOOK_WAKE_CHANNEL of the stack
        with redis.Redis.from_url(self.redis_url) as client:
            return dict(client.pubsub_numsub(channel)).get(channel.encode(), 0)

    def _database(self):
        import psycopg

        if self._watch is None or self._watch.closed:
            self._watch = psycopg.connect(self.env["DATABASE_URL"], autocommit=True)
        return self._watch

    def deadlocks(self) -> int:
        """Deadlocks PostgreSQL has detected in this database so far (its statistics lag
        by up to a second or so)."""
        row = (
            self._database()
            .execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .fetchone()
        )
        return row[0] or 0

    def workers_start(self, count: int, *, wait: float = 60) -> tuple[float, float]:
        """Start `count` more webhook workers (`manage.py process_webhooks -v0`); returns
        (perf_counter when the first of them listened, when all did)."""
        if count <= 0:
            now = time.perf_counter()
            return now, now
        before = self.listening()
        log = self.log_path.open("ab")
        for _ in range(count):
            nice = str(int(self.env.get("WEBHOOK_WORKER_NICE", "10")))
            # Niced as scripts/serve.sh starts them (WEBHOOK_WORKER_NICE, default 10).
            worker = subprocess.Popen(  # noqa: S603
                ["nice", "-n", nice, sys.executable, "manage.py", "process_webhooks", "-v0"],  # noqa: S607
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            self.workers.append(worker)
        log.close()
        first = None
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            listening = self.listening() - before
            now = time.perf_counter()
            if listening > 0 and first is None:
                first = now
            if listening >= count:
                return first, now
            if any(proc.poll() is not None for proc in self.workers):
                break
            time.sleep(0.01)
        self.workers_stop()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the webhook workers did not start listening:\n{tail}")

    def workers_stop(self) -> None:
        """Stop the webhook workers (each ends after the batch in hand)."""
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        self.workers = []

    def _healthy(self) -> bool:
        url = self.http_url + "/healthz"  # always http://127.0.0.1:<port>
        request = urllib.request.Request(url, headers=PROXY_HEADERS)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    @staticmethod
    def _accepts(port: int) -> bool:
        with socket.socket() as probe:
            probe.settimeout(1)
            return probe.connect_ex(("127.0.0.1", port)) == 0

    def pids(self) -> dict[str, list[int]]:
        """Python processes of the layout by role: gunicorn workers, daphne, db_worker, and
        the webhook workers the harness runs."""
        if not self.process:
            return {}
        roles: dict[str, list[int]] = {
            "gunicorn": [], "daphne": [], "db_worker": [],
            "webhook_worker": [p.pid for p in self.workers if p.poll() is None],
        }  # fmt: skip
        for pid in _descendants(self.process.pid):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "gunicorn" in cmd and _parent(pid) != self.process.pid:
                roles["gunicorn"].append(pid)  # a worker (its parent is the master)
            elif "daphne" in cmd:
                roles["daphne"].append(pid)
            elif "db_worker" in cmd:
                roles["db_worker"].append(pid)
        return roles

    def stop(self) -> None:
        self.workers_stop()
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left of this session
        self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        if self._watch is not None:
            with contextlib.suppress(Exception):
                self._watch.close()
            self._watch = None
        try:
            self._admin(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except Exception as exc:  # never hide the real error behind cleanup
            print(f"bench: could not drop {self.db_name}: {exc}", file=sys.stderr)
        try:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
            for start in range(0, len(keys), 500):
                client.delete(*keys[start : start + 500])
            client.close()
        except Exception as exc:
            print(f"bench: could not clean Redis prefix {self.prefix}: {exc}", file=sys.stderr)


class WaitSampler:
    """Samples, in a thread of its own, what the database's active backends wait on
    (pg_stat_activity's wait events; "cpu" when none) every `interval` seconds; `means()`
    is the mean number of backends per wait event over the samples. A `with` block."""

    QUERY = (
        "SELECT coalesce(wait_event_type || ':' || wait_event, 'cpu'), count(*)"
        " FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1"
    )

    def __init__(self, database_url: str, interval: float = 0.05) -> None:
        import collections
        import threading

        self.url = database_url
        self.interval = interval
        self.counts: collections.Counter = collections.Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-waits", daemon=True)

    def _run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.url, autocommit=True) as conn:
                while not self._stop.is_set():
                    self.counts.update(dict(conn.execute(self.QUERY).fetchall()))
                    self.samples += 1
                    self._stop.wait(self.interval)
        except Exception as exc:  # a figure for information: never fail the benchmark
            print(f"bench: wait sampling stopped: {exc}", file=sys.stderr)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def means(self) -> dict[str, float]:
        if not self.samples:
            return {}
        return {k: round(v / self.samples, 2) for k, v in self.counts.most_common()}


def _parent(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the processes have used so far, in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / tick


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            children.setdefault(_parent(int(entry.name)), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            found.append(child)
            todo.append(child)
    return found
