"""The browser tests' stacks; the `browser` and `login` fixtures are in tests/conftest.py."""

import os

import pytest

from tests.conftest import _missing, _reachable, redis_url
from tests.e2e.stack import Stack


@pytest.fixture(scope="module", params=["postgres-redis", "sqlite-memory"])
def stack(request, tmp_path_factory):
    if request.param == "postgres-redis":
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            _missing("PostgreSQL (DATABASE_URL=postgres://…)")
        if not redis_url() or not _reachable(redis_url()):
            _missing("Redis (REDIS_URL=redis://…)")
    running = Stack(request.param, tmp_path_factory.mktemp(request.param))
    running.start()
    yield running
    running.close()
