"""What every fake provider shares: a threaded HTTP server on loopback.

Tests start it in a daemon thread (`start`/`stop`); the `fake_*` management commands serve
it in the foreground until SIGTERM or Ctrl-C (`serve_until_stopped`).
"""

import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackServer:
    server: ThreadingHTTPServer
    url: str

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def _listen(self, host: str, port: int, public_url: str | None) -> None:
        """Bind now (port 0 picks a free one), so `url` is known before serving."""
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.url = public_url or f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve_until_stopped(self) -> None:
        """Serve in this thread until SIGTERM or Ctrl-C, then close the socket."""
        signal.signal(signal.SIGTERM, _leave)
        try:
            self.server.serve_forever(poll_interval=0.2)
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.server.server_close()


def _leave(signum, frame):
    # shutdown() from the serving thread itself would wait forever; leave the loop instead.
    raise SystemExit(0)
