"""Run a command (the test suite) with a PostgreSQL and a Redis it may use and throw away.

    python scripts/testenv.py -- python -m pytest …

- `DATABASE_URL` / `REDIS_URL` already set: used as they are (CI sets them).
- Otherwise the local services are used when they answer (PostgreSQL at `PGHOST`:`PGPORT`
  as `PGUSER`, default 127.0.0.1:5432 as postgres; Redis at `TEST_REDIS_HOST`:
  `TEST_REDIS_PORT`, default 127.0.0.1:6379): a database of this run's own is created and
  dropped at the end, and the channel layer gets a prefix of its own.
- When they do not answer, throwaway servers are started from the installed binaries
  (`initdb`/`postgres`, `redis-server`) on free loopback ports in a temporary directory, and
  stopped by their process id at the end. Nothing else is ever stopped.
- Neither possible: the command runs without it, and the tests that need it are skipped
  (or fail, with CI=true).

Set `TESTENV_NO_LOCAL=1` to skip the local services and always start throwaway ones.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path


def say(message: str) -> None:
    print(f"testenv: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _wait(predicate, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


def _stop(proc: subprocess.Popen, sig: int) -> None:
    """Stop one server we started, by its process id, and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_connect(dsn: str):
    import psycopg

    return psycopg.connect(dsn, autocommit=True, connect_timeout=2)


def _pg_url(user: str, host: str, port: int, name: str) -> str:
    return f"postgres://{user}@{host}:{port}/{name}"


@contextlib.contextmanager
def _pg_database(user: str, host: str, port: int) -> Iterator[str]:
    """A database of this run's own on a server that answers; dropped at the end."""
    name = f"confirma_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = _pg_url(user, host, port, "postgres")
    with _pg_connect(admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(user, host, port, name)
    finally:
        with contextlib.suppress(Exception), _pg_connect(admin) as conn:
            # Its test databases too: one, or one per process of a parallel run (_gw0…).
            tests = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = %s OR datname LIKE %s",
                (f"test_{name}", f"test_{name}_gw%"),
            ).fetchall()
            for db in [name, *(row[0] for row in tests)]:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _pg_bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(candidates[-1]).parent if candidates else None


def _unprivileged_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: run it as `postgres` (or `nobody`) then."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    raise RuntimeError("running as root and no unprivileged user to run PostgreSQL as")


@contextlib.contextmanager
def _pg_throwaway(bindir: Path) -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="confirma-pg-"))
    ids = _unprivileged_user()
    kwargs = {}
    if ids:
        os.chown(workdir, *ids)
        kwargs = {"user": ids[0], "group": ids[1], "extra_groups": []}
    data = workdir / "data"
    port = free_port()
    proc = None
    try:
        subprocess.run(
            [bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
             "--no-sync", "--no-instructions"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir,
            **kwargs,
        )  # fmt: skip
        log = open(workdir / "postgres.log", "wb")  # noqa: SIM115 - closed with the dir
        proc = subprocess.Popen(
            [bindir / "postgres", "-D", data, "-p", str(port), "-k", workdir,
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, cwd=workdir, **kwargs,
        )  # fmt: skip

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"postgres exited: {(workdir / 'postgres.log').read_text()}")
            try:
                _pg_connect(_pg_url("postgres", "127.0.0.1", port, "postgres")).close()
                return True
            except Exception:
                return False

        _wait(ready, timeout=30, what="PostgreSQL")
        say(f"started a throwaway PostgreSQL on 127.0.0.1:{port} (pid {proc.pid})")
        with _pg_database("postgres", "127.0.0.1", port) as url:
            yield url
    finally:
        if proc is not None:
            _stop(proc, signal.SIGINT)  # PostgreSQL's "fast" shutdown
        shutil.rmtree(workdir, ignore_errors=True)


def postgres(stack: contextlib.ExitStack) -> str | None:
    """The DATABASE_URL to test with; what it started is stopped when `stack` closes."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    user = os.environ.get("PGUSER", "postgres")
    host = os.environ.get("PGHOST", "127.0.0.1")
    port = int(os.environ.get("PGPORT", "5432"))
    if not os.environ.get("TESTENV_NO_LOCAL") and _answers(host, port):
        try:
            url = stack.enter_context(_pg_database(user, host, port))
        except Exception as exc:
            say(f"PostgreSQL at {host}:{port} answers but refused a test database ({exc})")
        else:
            say(f"using the local PostgreSQL at {host}:{port}")
            return url
    bindir = _pg_bindir()
    if bindir is None:
        say("no PostgreSQL: tests that need it are skipped (they fail with CI=true)")
        return None
    return stack.enter_context(_pg_throwaway(bindir))


# --- Redis --------------------------------------------------------------------------------


def _redis_ping(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def _redis_throwaway(binary: str) -> Iterator[str]:
    workdir = Path(tempfile.mkdtemp(prefix="confirma-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--logfile", workdir / "redis.log"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait(lambda: _redis_ping("127.0.0.1", port), timeout=15, what="Redis")
        say(f"started a throwaway Redis on 127.0.0.1:{port} (pid {proc.pid})")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc, signal.SIGTERM)
        shutil.rmtree(workdir, ignore_errors=True)


def redis(stack: contextlib.ExitStack) -> str | None:
    """The REDIS_URL to test with; what it started is stopped when `stack` closes."""
    if os.environ.get("REDIS_URL"):
        return os.environ["REDIS_URL"]
    host = os.environ.get("TEST_REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("TEST_REDIS_PORT", "6379"))
    if not os.environ.get("TESTENV_NO_LOCAL") and _redis_ping(host, port):
        say(f"using the local Redis at {host}:{port}")
        return f"redis://{host}:{port}/0"
    binary = shutil.which("redis-server")
    if binary is None:
        say("no Redis: tests that need it are skipped (they fail with CI=true)")
        return None
    return stack.enter_context(_redis_throwaway(binary))


# --- main ---------------------------------------------------------------------------------


def _terminate(signum, frame):  # pragma: no cover - exercised by hand
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        database_url = postgres(stack)
        redis_url = redis(stack)
        if database_url:
            env["DATABASE_URL"] = database_url
        if redis_url:
            env["REDIS_URL"] = redis_url
            env.setdefault("CHANNELS_PREFIX", f"confirma-test-{os.getpid()}")
        child = subprocess.Popen(argv, env=env)
        try:
            return child.wait()
        except BaseException:
            _stop(child, signal.SIGTERM)
            raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
