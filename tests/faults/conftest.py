"""Fixtures of the fault tests; the machinery is in tests/faults/harness.py."""

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import _missing, _reachable, redis_url
from tests.faults.harness import FaultStack, RedisServer, StackTemplate, TcpProxy

# The tickets tests' fixtures, for the unit tests of the print-job sweep.
from tests.payments.conftest import kiosk_secret  # noqa: F401
from tests.tickets.conftest import loopback_printer, service  # noqa: F401


@pytest.fixture(scope="session")
def _services_for_faults():
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        _missing("PostgreSQL (DATABASE_URL=postgres://…)")
    if not redis_url() or not _reachable(redis_url()):
        _missing("Redis (REDIS_URL=redis://…)")


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


@pytest.fixture(scope="session")
def stack_template(_services_for_faults, tmp_path_factory):
    template = StackTemplate(tmp_path_factory.mktemp("template"))
    yield template
    template.drop()


@pytest.fixture
def make_stack(stack_template, workdir):
    stacks: list[FaultStack] = []

    def _make(**kwargs) -> FaultStack:
        stack = FaultStack(workdir, template=stack_template, **kwargs)
        stacks.append(stack)
        return stack

    yield _make
    for stack in stacks:
        stack.close()


@pytest.fixture
def own_redis(workdir):
    server = RedisServer(workdir)
    yield server
    server.close()


@pytest.fixture
def pg_proxy():
    direct = urlparse(os.environ["DATABASE_URL"])
    proxy = TcpProxy(direct.hostname or "127.0.0.1", direct.port or 5432)
    yield proxy
    proxy.close()
