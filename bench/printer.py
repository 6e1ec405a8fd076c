"""A network thermal printer on loopback, in a thread of the harness: it takes ESC/POS
jobs, answers the real-time status request (DLE EOT 1) with "online", and stamps the
arrival of each job by the key found in its bytes (a payment reference, or a baseline
key)."""

from __future__ import annotations

import re
import socket
import threading
import time

from tickets.printing import STATUS_REQUEST

ONLINE = b"\x12"
KEY = re.compile(rb"(ps_[A-Za-z0-9_-]{24}|bk_[0-9]+)")


class LoopbackPrinter:
    def __init__(self, *, max_jobs: int = 100_000) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.printed: dict[str, float] = {}
        self.jobs = 0
        self.max_jobs = max_jobs
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bench-printer", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.server.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                data = b""
                try:
                    while not data.endswith(STATUS_REQUEST) and len(data) < 1_000_000:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    at = time.perf_counter()
                    conn.sendall(ONLINE)
                except OSError:
                    continue
            self.jobs += 1
            found = KEY.search(data)
            if found and self.jobs <= self.max_jobs:
                self.printed.setdefault(found.group(1).decode(), at)

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        self._thread.join(timeout=2)
