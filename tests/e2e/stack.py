"""A real Confirma for browser tests: its own database, daphne in a subprocess.

Two stacks exist: "postgres-redis" (what production and CI run) and "sqlite-memory" (the
embedded default of the one-command run).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlparse

from fakeproviders.billing import FakeBilling
from fakeproviders.mercadopago import FakeMercadoPago

ROOT = Path(__file__).resolve().parents[2]
MP_TOKEN = "TEST-e2e-access-token"
MP_SECRET = "e2e-mercadopago-webhook-secret"
KIOSK_SECRET = "whsec_ZTJlLWtpb3NrLXRlcm1pbmFsLXNlY3JldC0xMjM0"
BILLING = {
    "CLICK_SERVICE_ID": "40404",
    "CLICK_MERCHANT_ID": "5050",
    "CLICK_SECRET_KEY": "e2e-click-secret-key",
    "NOWPAYMENTS_API_KEY": "E2ENOWPAYMENTSKEY",
    "NOWPAYMENTS_IPN_SECRET": "e2e-nowpayments-ipn-secret",
    "COINBASE_COMMERCE_API_KEY": "e2e-coinbase-api-key",
    "COINBASE_COMMERCE_WEBHOOK_SECRET": "e2e-coinbase-webhook-secret",
}
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Stack:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self.server: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.webhooks: subprocess.Popen | None = None
        self.log = open(workdir / f"daphne-{kind}.log", "ab")  # noqa: SIM115
        self._pg_name = None
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.fake_mp = FakeMercadoPago(access_token=MP_TOKEN, webhook_secret=MP_SECRET).start()
        base_url = f"http://127.0.0.1:{self.port}"
        self.fake_billing = FakeBilling(
            click_service_id=BILLING["CLICK_SERVICE_ID"],
            click_merchant_id=BILLING["CLICK_MERCHANT_ID"],
            click_secret_key=BILLING["CLICK_SECRET_KEY"],
            nowpayments_api_key=BILLING["NOWPAYMENTS_API_KEY"],
            nowpayments_ipn_secret=BILLING["NOWPAYMENTS_IPN_SECRET"],
            coinbase_api_key=BILLING["COINBASE_COMMERCE_API_KEY"],
            coinbase_webhook_secret=BILLING["COINBASE_COMMERCE_WEBHOOK_SECRET"],
            click_prepare_url=base_url + "/webhooks/click/prepare/",
            click_complete_url=base_url + "/webhooks/click/complete/",
            coinbase_webhook_url=base_url + "/webhooks/coinbase/",
        ).start()
        env.update(
            FAKE_PROVIDERS="true",
            MERCADOPAGO_ACCESS_TOKEN=MP_TOKEN,
            MERCADOPAGO_WEBHOOK_SECRET=MP_SECRET,
            MERCADOPAGO_API_BASE=self.fake_mp.url,
            KIOSK_WEBHOOK_SECRET=KIOSK_SECRET,
            PUBLIC_BASE_URL=base_url,
            CLICK_PAY_URL=self.fake_billing.url + "/click/services/pay",
            NOWPAYMENTS_API_BASE=self.fake_billing.url + "/nowpayments",
            COINBASE_COMMERCE_API_BASE=self.fake_billing.url + "/coinbase",
            **BILLING,
            DEBUG="true",
            DJANGO_SETTINGS_MODULE="config.settings",
            CHANNELS_PREFIX=f"confirma-e2e-{uuid.uuid4().hex[:8]}",
            LOG_LEVEL="WARNING",
        )
        if kind == "postgres-redis":
            base = urlparse(os.environ["DATABASE_URL"])
            self._pg_name = f"confirma_e2e_{uuid.uuid4().hex[:10]}"
            self._pg_admin(f'CREATE DATABASE "{self._pg_name}"')
            env["DATABASE_URL"] = base._replace(path=f"/{self._pg_name}").geturl()
            env["REDIS_URL"] = os.environ["REDIS_URL"]
        else:
            env["DATABASE_URL"] = f"sqlite:///{workdir / 'e2e.sqlite3'}"
        self.env = env
        self.manage("migrate", "--no-input", "-v0")
        self.demo_output = self.manage("demo_data")

    def device_token(self, machine_code: str) -> str:
        match = re.search(
            rf"^\s*{re.escape(machine_code)}\s.*device token (mdt_\S+)$", self.demo_output, re.M
        )
        return match.group(1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _pg_admin(self, sql: str) -> None:
        import psycopg

        base = urlparse(os.environ["DATABASE_URL"])
        with psycopg.connect(base._replace(path="/postgres").geturl(), autocommit=True) as conn:
            conn.execute(sql)

    def manage(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def notify(self, audience: str, type: str, data: str) -> int:
        out = self.manage("notify", "--audience", audience, "--type", type, "--data", data)
        return int(re.search(r"published event (\d+)", out).group(1))

    def demo_line(self, pattern: str) -> str:
        return re.search(pattern, self.demo_output, re.M).group(1)

    def start_webhook_worker(self) -> subprocess.Popen:
        """The webhook worker (`process_webhooks`): confirms what the webhooks stored."""
        if self.webhooks is None or self.webhooks.poll() is not None:
            self.webhooks = subprocess.Popen(
                [sys.executable, "manage.py", "process_webhooks", "-v0"],
                cwd=ROOT,
                env=self.env,
                stdout=self.log,
                stderr=self.log,
            )
        return self.webhooks

    def start(self) -> None:
        self.start_webhook_worker()
        if self.worker is None or self.worker.poll() is not None:
            self.worker = subprocess.Popen(
                [
                    sys.executable,
                    "manage.py",
                    "db_worker",
                    "--no-reload",
                    "--interval",
                    "0.2",
                    "--no-startup-delay",
                    "-v0",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=self.log,
                stderr=self.log,
            )
        # A loaded machine may be slow to bring daphne up; one that exits at once (e.g. the
        # port is not free yet) is started again.
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

    def _spawn_server(self) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port),
             "config.asgi:application"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log,
        )  # fmt: skip

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/healthz", timeout=2)  # noqa: S310
        except urllib.error.HTTPError:
            return True  # answering (503 only means no worker runs here)
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None
        # Return only once nothing listens on the port any more.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.1)

    def close(self) -> None:
        self.stop()
        for process in (self.worker, self.webhooks):
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        self.fake_mp.stop()
        self.fake_billing.stop()
        self.log.close()
        if self._pg_name:
            self._pg_admin(f'DROP DATABASE IF EXISTS "{self._pg_name}" WITH (FORCE)')
