"""Several Confirma nodes, each a complete `scripts/serve.sh` process set (gunicorn, daphne,
webhook workers, task worker, periodic jobs), sharing one PostgreSQL database and one Redis.

- `Cluster`: what the nodes share — a PostgreSQL database of the test's own (created,
  migrated with `manage.py migrate`, dropped at the end), a Redis database number and
  channel prefix of its own (its keys deleted at the end), static files collected once into
  a directory of the test's own — and the production environment every node gets;
- `Node`: one `serve.sh` in a process group of its own (`start_new_session=True`), so that
  the test can SIGKILL the whole node at once, as a machine that loses power.

Each node's database connections carry its name as PostgreSQL's `application_name`, so
the test sees in `pg_stat_activity` that a killed node's connections are gone; which
node's webhook workers are listening it sees in Redis (their pub/sub connections are named
after their process ids). Only process groups started here are ever signalled.
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

import psycopg

from payments.services.wake import LISTENER_NAME
from tests.e2e.stack import KIOSK_SECRET, ROOT, free_port

SERVE = ROOT / "scripts" / "serve.sh"
REDIS_DB = 11  # the Redis database number of these tests (the suite's own tests use 0)
# Sent with every request, as the TLS-terminating proxy in front of serve.sh would.
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry.name))
    return members


def _answers(url: str) -> bool:
    request = urllib.request.Request(url, headers=PROXY_HEADERS)  # noqa: S310 - http://127.0.0.1
    try:
        urllib.request.urlopen(request, timeout=2)  # noqa: S310
    except urllib.error.HTTPError:
        return True  # answering (503: a part of /healthz is not fine yet)
    except OSError:
        return False
    return True


class Cluster:
    """The database, Redis and static files the nodes share, and their environment."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        tag = uuid.uuid4().hex[:8]
        base = urlparse(os.environ["DATABASE_URL"])
        self.name = f"{base.path.lstrip('/') or 'confirma'}_nodes_{tag}"[:63]
        self._admin_url = base._replace(path="/postgres").geturl()
        self.database_url = base._replace(path=f"/{self.name}").geturl()
        self.redis_url = urlparse(os.environ["REDIS_URL"])._replace(path=f"/{REDIS_DB}").geturl()
        self.prefix = f"confirma-nodes-{tag}"
        self.static_root = workdir / "static"
        for directory in ("media", "private"):
            (workdir / directory).mkdir(mode=0o750, exist_ok=True)
        self._created = False
        # The production profile, as an operator would configure it: nothing inherited from
        # the test run (CONFIRMA_TESTING, DEBUG, other providers' secrets) but the basics.
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", str(workdir)),
            "LANG": "C.UTF-8",
            "PY": sys.executable,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "CHANNELS_PREFIX": self.prefix,
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PUBLIC_BASE_URL": "https://confirma.example.com",
            "KIOSK_WEBHOOK_SECRET": KIOSK_SECRET,
            "STATIC_ROOT": str(self.static_root),
            "MEDIA_ROOT": str(workdir / "media"),
            "PRIVATE_MEDIA_ROOT": str(workdir / "private"),
            "LOG_LEVEL": "WARNING",
        }

    # --- the shared database ----------------------------------------------------------

    def create(self) -> None:
        """Create and migrate the database; collect the static files once meanwhile (the
        nodes then start with SKIP_PREPARE=true)."""
        self._admin(f'CREATE DATABASE "{self.name}"')
        self._created = True
        env = self.node_env("setup")
        collect = subprocess.Popen(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v0"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            self.manage("migrate", "--no-input", "-v0")
        finally:
            out, _ = collect.communicate(timeout=120)
        if collect.returncode != 0:
            raise AssertionError(f"collectstatic failed:\n{out}")

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute(statement)

    def node_env(self, name: str, **extra: str) -> dict[str, str]:
        """The environment of one node: its connections are named after it."""
        env = dict(self.env, **extra)
        env["DATABASE_URL"] = f"{self.database_url}?application_name={name}"
        return env

    def manage(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT, env=self.node_env("setup"), capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def python(self, code: str, timeout: float = 120):
        """Run `code` in `manage.py shell`; it assigns `result`, returned through JSON."""
        program = code + "\nimport json as _json\nprint('RESULT=' + _json.dumps(result))\n"
        out = self.manage("shell", "--no-imports", "-v0", "-c", program, timeout=timeout)
        line = next(line for line in out.splitlines() if line.startswith("RESULT="))
        return json.loads(line[len("RESULT=") :])

    def ticket_sessions(self, count: int) -> list[dict]:
        """A printer (`dummy:`), a kiosk printing on it, three services, and `count` kiosk
        ticket sessions over the services in turn, created through the payments service
        as the kiosk page does."""
        return self.python(
            f"""
import uuid
from payments.services import payment_session_create
from tickets.models import Kiosk, Printer, Service
printer = Printer.objects.create(name="Nodes printer", url="dummy:")
kiosk = Kiosk.objects.create(name="Nodes kiosk", printer=printer)
services = [
    Service.objects.create(name=f"Nodes service {{p}}", prefix=p, price="5.00", currency="BRL")
    for p in ("NA", "NB", "NC")
]
result = []
for n in range({count}):
    service = services[n % len(services)]
    session = payment_session_create(
        user=None, purpose="ticket", provider="kiosk", idempotency_key=uuid.uuid4().hex,
        params={{"service": service.pk, "kiosk": kiosk.pk}},
    ).session
    result.append({{"reference": session.reference, "amount": str(session.amount),
                   "currency": session.currency, "service": service.pk}})
"""
        )

    def sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def connections(self, node: str, query: str | None = None) -> int:
        """Open connections of `node` to the database (whose last statement was `query`)."""
        sql = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s"
        params = [self.name, node]
        if query is not None:
            sql += " AND query = %s"
            params.append(query)
        return self.sql(sql, params)[0][0]

    def listening(self) -> set[int]:
        """Process ids of the webhook workers listening for wake-ups in Redis (their
        connections are named `confirma-webhook-worker:<host>:<pid>`)."""
        import redis

        with redis.Redis.from_url(self.redis_url) as client:
            names = [c.get("name", "") for c in client.client_list(_type="pubsub")]
        return {
            int(name.rsplit(":", 1)[1])
            for name in names
            if name.startswith(LISTENER_NAME + ":") and name.rsplit(":", 1)[1].isdigit()
        }

    def backends(self) -> list[tuple]:
        """What every connection to the database is doing (for failure messages)."""
        return self.sql(
            "SELECT pid, application_name, state, wait_event_type, wait_event, "
            "pg_blocking_pids(pid), round(extract(epoch FROM now() - xact_start)::numeric, 1), "
            "left(query, 200) FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid() ORDER BY application_name, pid",
            [self.name],
        )

    def close(self) -> None:
        if self._created:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._created = False
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(self.redis_url)
            try:
                keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


class Node:
    """One `scripts/serve.sh`, in a process group (and session) of its own."""

    def __init__(
        self,
        name: str,
        cluster: Cluster,
        *,
        webhook_workers: int = 1,
        run_periodic: bool = True,
        **env: str,
    ) -> None:
        self.name, self.cluster = name, cluster
        self.http_port, self.ws_port = free_port(), free_port()
        self.webhook_workers = webhook_workers
        self.env = cluster.node_env(
            name,
            HTTP_PORT=str(self.http_port),
            WS_PORT=str(self.ws_port),
            DAPHNE_PROCESSES="1",
            WEBHOOK_WORKERS=str(webhook_workers),
            WORKER_PROCESSES="1",
            RUN_PERIODIC="true" if run_periodic else "false",
            SKIP_PREPARE="true",
            **env,
        )
        self.log_path = cluster.workdir / f"node-{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def pgid(self) -> int:
        return self.proc.pid  # the leader of the session start_new_session made

    def start(self) -> "Node":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["bash", str(SERVE)], cwd=ROOT, env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        assert os.getpgid(self.proc.pid) == self.proc.pid
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """gunicorn and daphne answer, and every webhook worker listens for deliveries."""
        if not self.running():
            raise AssertionError(f"node {self.name} exited:\n{self.log_tail()}")
        return (
            _answers(f"{self.url}/healthz")
            and _answers(f"http://127.0.0.1:{self.ws_port}/healthz")
            and len(self.cluster.listening() & set(group_members(self.pgid)))
            >= self.webhook_workers
        )

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"node {self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.2)

    def members(self) -> list[int]:
        return group_members(self.pgid) if self.proc is not None else []

    def kill(self, timeout: float = 10) -> None:
        """SIGKILL every process of the node at once (a machine losing power)."""
        os.killpg(self.pgid, signal.SIGKILL)
        self._await_group(timeout)
        self.proc.wait(timeout=timeout)

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM to serve.sh (which stops its processes); SIGKILL for what is left."""
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout
            # Wait for serve.sh without reaping it: while it is unreaped, its pid (the
            # group's id) cannot be reused, so the killpg below reaches only this node.
            while time.monotonic() < deadline and not self._exited():
                time.sleep(0.1)
            if self.members():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pgid, signal.SIGKILL)
            self._await_group(10)
            self.proc.wait(timeout=10)

    def _exited(self) -> bool:
        try:
            info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def _await_group(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self.members():
            if time.monotonic() > deadline:
                raise AssertionError(f"node {self.name}: {self.members()} still alive")
            time.sleep(0.05)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
