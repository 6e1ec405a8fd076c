import socket
import threading
import uuid

import pytest

from payments.providers.kiosk import kiosk_notification
from tests.factories import PrinterFactory, ServiceFactory
from tests.payments.conftest import *  # noqa: F403 - provider fakes
from tests.payments.conftest import post_kiosk
from tickets.printing import STATUS_REQUEST

ONLINE = b"\x12"


class LoopbackPrinter:
    """A network thermal printer on loopback: keeps what it receives and answers the
    real-time status request (DLE EOT 1) with "online"."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.port = self.server.getsockname()[1]
        self.jobs: list[bytes] = []
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                data = b""
                conn.settimeout(5)
                while not data.endswith(STATUS_REQUEST):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.jobs.append(data[: -len(STATUS_REQUEST)])
                conn.sendall(ONLINE)

    def close(self) -> None:
        self._stop = True
        self.server.close()


class DeafPrinter:
    """Accepts connections (the kernel does) but never reads nor answers."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.url = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"

    def close(self) -> None:
        self.server.close()


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


@pytest.fixture
def loopback_printer():
    printer = LoopbackPrinter()
    yield printer
    printer.close()


@pytest.fixture
def deaf_printer():
    printer = DeafPrinter()
    yield printer
    printer.close()


@pytest.fixture
def service(db):
    return ServiceFactory(name="Emissão de 2ª via", prefix="A")


@pytest.fixture
def printer(db, loopback_printer):
    return PrinterFactory(name="Balcão", url=loopback_printer.url)


def pay_at_kiosk(client, secret, session, *, msg_id=None):
    headers, body = kiosk_notification(
        secret=secret,
        reference=session.reference,
        amount=str(session.amount),
        currency=session.currency,
        msg_id=msg_id or f"msg_{uuid.uuid4().hex}",
    )
    return post_kiosk(client, headers, body)


def kiosk_session(service, **params):
    from payments.services import payment_session_create

    return payment_session_create(
        user=None,
        purpose="ticket",
        provider="kiosk",
        idempotency_key=uuid.uuid4().hex,
        params={"service": service.pk, **params},
    ).session


@pytest.fixture
def dummy_printer(db):
    """A printer kept in the database (`dummy:`): printing always succeeds, at once."""
    return PrinterFactory(name="Demo")


def paid_ticket(service, *, printed: bool = True, **params):
    """A ticket from a kiosk session confirmed through the one confirmation path; printed
    (IN_QUEUE) unless `printed` is False (PAID, its job queued)."""
    from payments.models import AuditSource
    from payments.services.confirmation import Evidence, payment_confirm
    from tickets.models import Ticket
    from tickets.services import print_job_run

    session = kiosk_session(service, **params)
    payment_confirm(
        reference=session.reference,
        amount=session.amount,
        currency=session.currency,
        evidence=Evidence(source=AuditSource.SYSTEM, reason="test"),
    )
    ticket = Ticket.objects.get(payment_session=session)
    if printed:
        for job in ticket.print_jobs.all():
            print_job_run(job_id=job.pk)
        ticket.refresh_from_db()
    return ticket


def messages_of(response) -> list[tuple[str, str]]:
    """The (level, text) of each message a followed response showed."""
    return [(m.level_tag, str(m)) for m in response.context["messages"]]
