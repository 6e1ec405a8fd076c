"""The browser tests' stacks; the `browser` and `login` fixtures are in tests/conftest.py.

Starting a stack (migrate, demo data, daphne and two workers) costs far more than most
tests on it, so each kind is started once per test run and shared by every module:

- `postgres_redis_stack`: what production and CI run (PostgreSQL, Redis channel layer);
- `sqlite_memory_stack`: the embedded default of the one-command run;
- `stack`: each of the two in turn (a test taking it runs once on each), for the flows
  whose live updates must be proven through both.

The tests on a stack share its data, as they always did within a module: a test relies on
the demo data only for what no other test takes away (it creates its own payments, orders
and tickets, and reads counts relative to what it found).
"""

import os

import pytest

from tests.conftest import _missing, _reachable, redis_url
from tests.e2e.stack import Stack

KINDS = ["postgres-redis", "sqlite-memory"]


def _start(kind: str, tmp_path_factory):
    if kind == "postgres-redis":
        if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
            _missing("PostgreSQL (DATABASE_URL=postgres://…)")
        if not redis_url() or not _reachable(redis_url()):
            _missing("Redis (REDIS_URL=redis://…)")
    running = Stack(kind, tmp_path_factory.mktemp(kind))
    running.start()
    return running


@pytest.fixture(scope="session")
def postgres_redis_stack(tmp_path_factory):
    running = _start("postgres-redis", tmp_path_factory)
    yield running
    running.close()


@pytest.fixture(scope="session")
def sqlite_memory_stack(tmp_path_factory):
    running = _start("sqlite-memory", tmp_path_factory)
    yield running
    running.close()


@pytest.fixture(scope="session", params=KINDS)
def stack(request):
    return request.getfixturevalue(request.param.replace("-", "_") + "_stack")


@pytest.fixture(autouse=True)
def _stack_serving(request):
    """A test that stopped its stack's server (to cut connections) and failed before it
    started it again leaves it stopped: the next test on the shared stack starts it."""
    if "stack" in request.fixturenames:
        running = request.getfixturevalue("stack")
        if running.server is None or running.server.poll() is not None:
            running.start()
    yield


@pytest.fixture
def open_as(browser, stack):
    """`open_as(username, viewport)`: a page of its own browser context on the stack the
    test uses, logged in as `username` (the demo's password), or anonymous for None."""
    contexts = []

    def _open(username: str | None, viewport: dict):
        context = browser.new_context(base_url=stack.url, locale="en-US", viewport=viewport)
        contexts.append(context)
        page = context.new_page()
        if username:
            page.goto("/accounts/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", "confirma-demo")
            page.click("form.form button[type=submit]")
            page.wait_for_url(stack.url + "/")
        return page

    yield _open
    for context in contexts:
        context.close()
