"""Fault injection: a Confirma stack wired to faults the tests control.

- `RedisServer`: a redis-server of the test's own, on a free port, that a test may kill
  (SIGKILL), freeze (SIGSTOP) and start again on the same port;
- `TcpProxy`: an asyncio TCP proxy between a server and PostgreSQL that drops every
  connection at once, on demand or when a statement goes through it;
- `SlowPrinter`: a loopback ESC/POS printer that takes its time to answer, so that jobs
  are in flight, and can be switched off (port closed) and on again;
- `FaultStack`: tests/e2e/stack.py's Stack (daphne, the webhook worker and db_worker on a
  database of its own), pointed at the above. Every process of the stack gets the same
  environment: with a proxy, the webhook worker reaches PostgreSQL through it too.

Only processes started here are ever signalled, by their pid.
"""

import asyncio
import contextlib
import json
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import psycopg
import requests

from payments.providers.kiosk import kiosk_notification
from tests.e2e.stack import KIOSK_SECRET, ROOT, Stack, free_port
from tickets.printing import STATUS_REQUEST

ONLINE = b"\x12"


def listen_port() -> int:
    """A free port below the ephemeral range, for a listener the test stops and starts
    again. A port from the ephemeral range could meanwhile become the local end of some
    outgoing connection — even a client's connection to that very port, which Linux then
    connects to itself — and the listener could not come back."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _attempt in range(200):
        port = rng.randrange(max(1025, low - 12000), low)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


def wait_until(predicate, *, timeout: float, interval: float = 0.2, what: str = "condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def settled(read, expected, *, timeout: float = 10.0, interval: float = 0.1):
    """What `read()` returns once it returns `expected`, or when `timeout` seconds are up
    (for figures a server writes a little later, such as refused requests' repeats)."""
    deadline = time.monotonic() + timeout
    while (value := read()) != expected and time.monotonic() < deadline:
        time.sleep(interval)
    return value


# --- Redis --------------------------------------------------------------------------------------


class RedisServer:
    """A redis-server of our own (no persistence): kill it, freeze it, start it again."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = listen_port()
        self.proc: subprocess.Popen | None = None
        self.log = open(workdir / f"redis-{self.port}.log", "ab")  # noqa: SIM115
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        for _attempt in range(3):
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir)],
                stdout=self.log, stderr=self.log,
            )  # fmt: skip
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.answers():
                    return
                time.sleep(0.05)
            self._reap()
            time.sleep(0.5)  # the port may still be held for a moment
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: everything it held (channel-layer groups, queued messages) is gone."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def freeze(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def _reap(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self._reap()
        self.log.close()


# --- A TCP proxy that drops connections ----------------------------------------------------


class _Link:
    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client, self.server = client, server
        self.stage = 0
        self.tail = b""
        self.cut_on_reply = False


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset, as a dead network or a crashed peer would."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`, in a thread with its own event loop.

    `arm(*patterns)` makes it drop every connection when one connection has sent the
    patterns in that order (the chunk with the last one is not forwarded); with
    `after_reply=True` that chunk is forwarded and the connections are dropped when the
    server answers it, so the server has done it and the client never hears so.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.links: set[_Link] = set()
        self.cuts = 0
        self.tripped = threading.Event()
        self._armed: tuple[tuple[bytes, ...], bool] | None = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._accept, "127.0.0.1", 0), self.loop
        ).result(timeout=10)
        self.port = self.server.sockets[0].getsockname()[1]

    def arm(self, *patterns: bytes, after_reply: bool = False) -> None:
        async def _arm():
            self.tripped.clear()
            for link in self.links:
                link.stage, link.tail = 0, b""
            self._armed = (patterns, after_reply)

        asyncio.run_coroutine_threadsafe(_arm(), self.loop).result(timeout=10)

    def cut_all(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self.loop).result(timeout=10)

    async def _cut(self) -> None:
        self._armed = None
        self.cuts += 1
        for link in list(self.links):
            _reset(link.client)
            _reset(link.server)
        self.links.clear()
        self.tripped.set()

    async def _accept(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(client_writer)
            return
        link = _Link(client_writer, server_writer)
        self.links.add(link)
        await asyncio.gather(
            self._pump_up(link, client_reader), self._pump_down(link, server_reader),
            return_exceptions=True,
        )  # fmt: skip
        self.links.discard(link)
        for writer in (client_writer, server_writer):
            writer.transport.abort()

    def _matches(self, link: _Link, data: bytes) -> bool:
        patterns, _after = self._armed
        buffer, position = link.tail + data, 0
        while link.stage < len(patterns):
            found = buffer.find(patterns[link.stage], position)
            if found < 0:
                break
            position = found + len(patterns[link.stage])
            link.stage += 1
        if link.stage == len(patterns):
            return True
        keep = max(len(p) for p in patterns)
        link.tail = buffer[max(position, len(buffer) - keep) :]
        return False

    async def _pump_up(self, link: _Link, reader) -> None:
        while data := await reader.read(65536):
            if self._armed and link in self.links and self._matches(link, data):
                if not self._armed[1]:
                    await self._cut()
                    return
                self._armed = None
                link.cut_on_reply = True
            link.server.write(data)
            await link.server.drain()
        link.server.write_eof()

    async def _pump_down(self, link: _Link, reader) -> None:
        while data := await reader.read(65536):
            if link.cut_on_reply:
                await self._cut()
                return
            link.client.write(data)
            await link.client.drain()
        link.client.write_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cut_all()

        async def _stop():
            self.server.close()

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)


# --- Printers ------------------------------------------------------------------------------------


class SlowPrinter:
    """A network thermal printer on loopback that answers the status request only after
    `delay` seconds (jobs stay in flight that long). `off()` closes its port (a printer
    switched off: connections refused); `on()` listens on the same port again."""

    def __init__(self, delay: float = 0.0, port: int | None = None) -> None:
        self.delay = delay
        self.port = port or listen_port()
        self.jobs: list[bytes] = []
        self.connections = 0
        self.holding = threading.Event()  # set while a received job awaits its answer
        self._server: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def on(self) -> "SlowPrinter":
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        server.settimeout(0.2)
        self._server, self._stop = server, threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(server, self._stop), daemon=True)
        self._thread.start()
        return self

    def off(self) -> None:
        if self._server is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._server.close()
            self._server = None

    def _serve(self, server: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=self._job, args=(conn,), daemon=True).start()

    def _job(self, conn: socket.socket) -> None:
        self.connections += 1
        with conn:
            conn.settimeout(10)
            data = b""
            with contextlib.suppress(OSError):
                while not data.endswith(STATUS_REQUEST):
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                # The paper is out once the bytes are in, whatever happens next.
                self.jobs.append(data[: -len(STATUS_REQUEST)])
                self.holding.set()
                time.sleep(self.delay)
                self.holding.clear()
                conn.sendall(ONLINE)


# --- The stack ----------------------------------------------------------------------------------


class StackTemplate:
    """A database migrated and filled with the demo data once per test session; each
    FaultStack gets a copy (CREATE DATABASE … TEMPLATE) instead of migrating its own."""

    def __init__(self, workdir: Path) -> None:
        builder = Stack("postgres-redis", workdir)
        self.name, self.demo_output = builder._pg_name, builder.demo_output
        builder._pg_name = None  # keep the database when the builder closes
        builder.close()

    def drop(self) -> None:
        Stack._pg_admin(None, f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class FaultStack(Stack):
    """A "postgres-redis" Stack whose server and worker may use our own Redis, reach
    PostgreSQL through a proxy, and get extra settings. The test itself reads the
    database directly (`sql`), never through the proxy."""

    def __init__(
        self,
        workdir: Path,
        *,
        template: StackTemplate | None = None,
        redis: str | None = None,
        db_proxy: TcpProxy | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self._template = template
        super().__init__("postgres-redis", workdir)
        self._template = None
        self.direct_database_url = self.env["DATABASE_URL"]
        if redis:
            self.env["REDIS_URL"] = redis
        if db_proxy:
            direct = urlparse(self.direct_database_url)
            userinfo = direct.netloc.rpartition("@")[0]
            netloc = f"127.0.0.1:{db_proxy.port}"
            netloc = f"{userinfo}@{netloc}" if userinfo else netloc
            self.env["DATABASE_URL"] = direct._replace(netloc=netloc).geturl()
        self.env.update(env or {})

    def _pg_admin(self, sql: str) -> None:
        if self._template and sql.startswith("CREATE DATABASE"):
            sql += f' TEMPLATE "{self._template.name}"'
        super()._pg_admin(sql)

    def manage(self, *args: str, timeout: float = 120) -> str:
        if self._template and args[0] in ("migrate", "demo_data"):
            return self._template.demo_output if args[0] == "demo_data" else ""
        return super().manage(*args, timeout=timeout)

    def start_worker(self) -> subprocess.Popen:
        assert self.worker is None or self.worker.poll() is not None
        self.worker = subprocess.Popen(
            [sys.executable, "manage.py", "db_worker", "--no-reload", "--interval", "0.2",
             "--no-startup-delay", "-v0"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log,
        )  # fmt: skip
        return self.worker

    def kill_worker(self) -> None:
        self.worker.send_signal(signal.SIGKILL)
        self.worker.wait(timeout=10)

    def kill_webhook_worker(self) -> None:
        """SIGKILL the webhook worker (by its pid): the deliveries it had claimed stay
        claimed until their lease ends."""
        self.webhooks.send_signal(signal.SIGKILL)
        self.webhooks.wait(timeout=10)

    def deliveries_waiting(self) -> int:
        """Deliveries the webhook workers have still to settle: new or claimed ones
        ('received') and failed ones due for a retry."""
        return self.sql(
            "SELECT count(*) FROM payments_webhookdelivery WHERE status IN ('received', 'failed')"
        )[0][0]

    def wait_drained(self, *, timeout: float = 60) -> None:
        """Wait until the webhook workers have settled every stored delivery."""
        assert self.webhooks is not None and self.webhooks.poll() is None, "no webhook worker"
        wait_until(
            lambda: self.deliveries_waiting() == 0,
            timeout=timeout,
            interval=0.25,
            what="the webhook workers to settle every delivery",
        )

    def delivery_status(self, delivery_id: int) -> str | None:
        rows = self.sql("SELECT status FROM payments_webhookdelivery WHERE id = %s", (delivery_id,))
        return rows[0][0] if rows else None

    def wait_outcome(self, delivery_id: int, *, timeout: float = 30) -> str:
        """Wait until the webhook worker has settled one delivery; its status."""

        def settled() -> str | None:
            status = self.delivery_status(delivery_id)
            return None if status in (None, "received", "failed") else status

        return wait_until(
            settled, timeout=timeout, interval=0.1, what=f"delivery {delivery_id} processed"
        )

    def start_server(self) -> None:
        """Stack.start without the task worker (the webhook worker runs: it is what
        confirms what the server's webhooks store)."""
        self.start_webhook_worker()
        for _attempt in range(3):
            self.server = self._spawn_server()
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline and self.server.poll() is None:
                if self._answers():
                    return
                time.sleep(0.1)
            self.stop()
            time.sleep(1)
        raise AssertionError(f"daphne did not start on {self.url}")

    def login(self, username: str, password: str = "confirma-demo") -> requests.Session:
        """An HTTP session logged in as a demo user (session and CSRF cookies set)."""
        http = requests.Session()
        page = http.get(self.url + "/accounts/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        done = http.post(
            self.url + "/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            timeout=30,
        )
        assert done.ok and "sessionid" in http.cookies, f"could not log in as {username}"
        return http

    def pay(self, http: requests.Session, session: dict, **fields) -> requests.Response:
        """Post the kiosk terminal's signed "paid" notification for `session`; the intake
        answers as soon as it is stored ("accepted"), the webhook worker confirms it."""
        headers, body = kiosk_notification(
            secret=KIOSK_SECRET,
            reference=session["reference"],
            amount=session["amount"],
            currency=session["currency"],
            **fields,
        )
        return http.post(self.url + "/webhooks/kiosk/", data=body, headers=headers, timeout=30)

    def pay_processed(self, http: requests.Session, session: dict, **fields) -> str:
        """`pay`, checked to be accepted at intake, then waited for until the webhook
        worker has processed it; the delivery's status."""
        response = self.pay(http, session, **fields)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["status"] == "accepted", answer
        return self.wait_outcome(answer["delivery"])

    def sql(self, query: str, params=()) -> list[tuple]:
        with psycopg.connect(self.direct_database_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def python(self, code: str, timeout: float = 120):
        """Run `code` in `manage.py shell` on the stack's database; it assigns `result`,
        which comes back through JSON."""
        program = code + "\nimport json as _json\nprint('RESULT=' + _json.dumps(result))\n"
        out = self.manage("shell", "--no-imports", "-v0", "-c", program, timeout=timeout)
        line = next(line for line in out.splitlines() if line.startswith("RESULT="))
        return json.loads(line[len("RESULT=") :])

    def ticket_sessions(self, count: int, *, prefixes=("A", "B", "C")) -> list[dict]:
        """`count` kiosk ticket sessions spread over the services, created through the
        payments service as the kiosk page does."""
        return self.python(
            f"""
import uuid
from payments.services import payment_session_create
from tickets.models import Service
services = [Service.objects.get(prefix=p).pk for p in {list(prefixes)!r}]
result = []
for n in range({count}):
    service = services[n % len(services)]
    session = payment_session_create(
        user=None, purpose="ticket", provider="kiosk", idempotency_key=uuid.uuid4().hex,
        params={{"service": service}},
    ).session
    result.append({{"reference": session.reference, "amount": str(session.amount),
                   "currency": session.currency, "service": service}})
"""
        )

    def point_printers_at(self, url: str) -> None:
        self.sql("UPDATE tickets_printer SET url = %s", (url,))
