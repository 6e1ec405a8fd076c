"""`scripts/testenv.py`: the suite gets a PostgreSQL and a Redis even when nothing is set."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CI

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import os, socket, psycopg
url = os.environ["DATABASE_URL"]
with psycopg.connect(url, autocommit=True) as conn:
    print("pg", conn.execute("select 1").fetchone()[0], url.rsplit(":", 1)[1].split("/")[0])
redis_url = os.environ["REDIS_URL"]
host, port = redis_url.split("//")[1].split("/")[0].split(":")
with socket.create_connection((host, int(port))) as sock:
    sock.sendall(b"PING\\r\\n")
    print("redis", sock.recv(16).decode().strip(), port)
print("prefix", os.environ["CHANNELS_PREFIX"])
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()}
    for name in ("DATABASE_URL", "REDIS_URL", "CHANNELS_PREFIX"):
        env.pop(name, None)
    env.update(extra)
    return env


def _run(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "scripts/testenv.py", "--", sys.executable, "-c", PROBE],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _need_binaries() -> None:
    missing = [b for b in ("redis-server",) if not shutil.which(b)]
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import testenv
    finally:
        sys.path.pop(0)
    if testenv._pg_bindir() is None:
        missing.append("initdb")
    if missing:
        if CI:
            pytest.fail(f"{', '.join(missing)} required when CI=true", pytrace=False)
        pytest.skip(f"{', '.join(missing)} not installed")


def test_nothing_set_and_no_local_services_starts_throwaway_servers_and_stops_them():
    _need_binaries()
    result = _run(_clean_env(TESTENV_NO_LOCAL="1"))
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["pg"].startswith("1 ")
    assert lines["redis"].startswith("+PONG ")
    assert lines["prefix"].startswith("confirma-test-")
    assert "throwaway PostgreSQL" in result.stderr and "throwaway Redis" in result.stderr
    # Both servers were stopped by their process ids when the command ended.
    pids = [int(part.split("pid ")[1].rstrip(")")) for part in result.stderr.splitlines()
            if "(pid " in part]  # fmt: skip
    assert len(pids) == 2
    for pid in pids:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


def test_the_command_s_exit_status_is_kept():
    _need_binaries()
    result = subprocess.run(
        [sys.executable, "scripts/testenv.py", "--", sys.executable, "-c", "raise SystemExit(3)"],
        cwd=ROOT, env=_clean_env(TESTENV_NO_LOCAL="1"), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 3


def test_set_urls_are_used_as_they_are():
    result = subprocess.run(
        [sys.executable, "scripts/testenv.py", "--", sys.executable, "-c",
         "import os; print(os.environ['DATABASE_URL'], os.environ['REDIS_URL'])"],
        cwd=ROOT, env=_clean_env(DATABASE_URL="sqlite:///x", REDIS_URL="redis://h:1/0"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sqlite:///x", "redis://h:1/0"]
