"""Shared test set-up.

Tests that need PostgreSQL, Redis or Chromium carry the `postgres`, `redis` or `browser`
marker. They are skipped when the service is missing on a developer's machine, and fail
instead when CI=true: CI must never pass by skipping.
"""

import os
import shutil
import socket
import uuid
from urllib.parse import urlparse

import pytest

CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def _missing(what: str) -> None:
    if CI:
        pytest.fail(f"{what} is required when CI=true", pytrace=False)
    pytest.skip(f"{what} not available")


def redis_url() -> str:
    return os.environ.get("REDIS_URL", "")


def _reachable(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname, parsed.port or 6379), timeout=1):
            return True
    except OSError:
        return False


# Tests in these directories run one after another in one process of a parallel run
# (pytest-xdist, `--dist loadgroup`): the browser tests share their stacks and Chromium
# (tests/e2e/conftest.py), the fault tests start servers and kill processes.
SERIAL_GROUPS = ("e2e", "faults")
# …except these modules, which test the database of the run (see the scheduler below).
DATABASE_TESTS_IN_GROUPS = ("tests/faults/test_print_recovery.py",)


def pytest_configure(config):
    from django.conf import settings

    # Threads the tests start (channels' database_sync_to_async executors, the live
    # servers) would keep their connections open past the end of the run, and the test
    # database could not be dropped. Servers the tests start as processes keep the default.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        _names_of_the_workers_own(settings, worker)


def _names_of_the_workers_own(settings, worker: str) -> None:
    """Each process of a parallel run has its own test database (pytest-django adds the
    worker's name to it); here it also gets its own names in Redis (channel groups, cache
    keys, the webhook workers' wake-up), and so do the processes it starts."""
    prefix = f"{settings.CHANNELS_PREFIX}-{worker}"
    os.environ["CHANNELS_PREFIX"] = prefix
    settings.CHANNELS_PREFIX = prefix
    for layer in settings.CHANNEL_LAYERS.values():
        if "prefix" in layer.get("CONFIG", {}):
            layer["CONFIG"]["prefix"] = prefix
    for cache in settings.CACHES.values():
        if "KEY_PREFIX" in cache:
            cache["KEY_PREFIX"] = prefix
    settings.WEBHOOK_WAKE_CHANNEL = f"{prefix}:deliveries"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadgroup`, grouping by directory: each of SERIAL_GROUPS is one unit of work
    for one process (the biggest units are handed out first); every other test is a unit
    of its own. (xdist's own `xdist_group` marks do not reach its scheduler on pytest 9,
    which no longer reads the node id the marks are written into.)

    A group runs before the ordinary database tests of its process, so it must hold no
    test on the test database: a transactional test's flush would leave the tests after
    it without the data the migrations made (the roles). The modules of these
    directories that have such tests are shared out test by test like the rest
    (pytest-django runs their database tests in its order: ordinary, then transactional)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class DirectoryGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            parts = path.split("/")
            if (
                len(parts) > 2
                and parts[0] == "tests"
                and parts[1] in SERIAL_GROUPS
                and path not in DATABASE_TESTS_IN_GROUPS
            ):
                return parts[1]
            return nodeid

    return DirectoryGroups(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Playwright's sync API leaves its event loop marked as running in this thread from
    the `browser` fixture's first use to the end of the process: Django would refuse
    database access there ("async context") and pytest-asyncio could not run loops of its
    own. In a parallel run any test may follow a browser test in the same process, so a
    test that does not use the browser runs (set-up and tear-down included) with the mark
    taken off; it is put back afterwards."""
    from asyncio import events

    loop = events._get_running_loop()
    if loop is None or "browser" in item.fixturenames:
        return (yield)
    events._set_running_loop(None)
    try:
        return (yield)
    finally:
        if events._get_running_loop() is None and not loop.is_closed():
            events._set_running_loop(loop)


def pytest_runtest_setup(item):
    if item.get_closest_marker("postgres"):
        from django.conf import settings

        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
            _missing("PostgreSQL (DATABASE_URL=postgres://…)")
    if item.get_closest_marker("redis"):
        url = redis_url()
        if not url or not _reachable(url):
            _missing("Redis (REDIS_URL=redis://…)")
    if item.get_closest_marker("browser"):
        try:
            import playwright  # noqa: F401
        except ImportError:
            _missing("Playwright")
        if not shutil.which(CHROMIUM) and not os.path.exists(CHROMIUM):
            _missing(f"Chromium at {CHROMIUM}")


def _reset_channel_layers():
    from channels.layers import channel_layers

    channel_layers.backends = {}


@pytest.fixture
def redis_layer(settings):
    """The real Redis channel layer, as shipped, with a prefix of its own for this test."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {"address": redis_url(), "socket_connect_timeout": 2, "socket_timeout": 5}
                ],
                "prefix": f"confirma-test-{uuid.uuid4().hex[:10]}",
            },
        }
    }
    _reset_channel_layers()
    yield
    _reset_channel_layers()


@pytest.fixture
def memory_layer(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    _reset_channel_layers()
    yield
    _reset_channel_layers()


@pytest.fixture(autouse=True)
def _intake_writer_stopped():
    """The intake's group-commit writer (a thread with a database connection of its own)
    ends with the test that started it: no connection outlives the test's database."""
    yield
    from payments.services.group_commit import intake_writer

    intake_writer.stop()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Hashing test passwords with PBKDF2 would cost ~0.3 s per user."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _throttle_counts_of_its_own(settings):
    """Each test counts throttled requests afresh (in a cache namespace of its own, as
    Redis outlives the run), under limits no ordinary test meets; the throttling tests set
    real ones with the settings fixture."""
    settings.CACHES = {
        name: {**conf, "KEY_PREFIX": f"confirma-test-{uuid.uuid4().hex[:12]}"}
        for name, conf in settings.CACHES.items()
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            scope: "1000/min" for scope in settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
        },
    }


@pytest.fixture(scope="session")
def browser():
    # One Chromium for the whole run: a second sync Playwright in the same thread fails.
    from tests.e2e.stack import CHROMIUM_FLAGS

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright")
    if not os.path.exists(CHROMIUM):
        _missing(f"Chromium at {CHROMIUM}")
    from asyncio import events

    with sync_playwright() as playwright:
        loop = events._get_running_loop()
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield chromium
        # Torn down at the end of a test that does not use the browser, Playwright needs
        # its loop marked as running again (see pytest_runtest_protocol).
        events._set_running_loop(loop)
        chromium.close()


@pytest.fixture
def login(browser):
    contexts = []

    def _login(stack, username: str, password: str = "confirma-demo"):
        context = browser.new_context(base_url=stack.url, locale="en-US")
        contexts.append(context)
        page = context.new_page()
        page.goto("/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("form.form button[type=submit]")
        page.wait_for_url(stack.url + "/")
        return page

    yield _login
    for context in contexts:
        context.close()


class Processed:
    """A webhook's answer at intake and, when it was accepted, what the webhook workers
    made of its delivery: `json()` is the delivery's outcome ({"status": "processed"…})
    once every waiting delivery has been processed, as a worker would."""

    def __init__(self, response):
        from payments.models import WebhookDelivery
        from payments.services.deliveries import deliveries_drain

        self.response = response
        self.status_code = response.status_code
        self.content = response.content
        self.intake = response.json()
        self.body = self.intake
        if self.intake.get("status") == "accepted":
            deliveries_drain()
            delivery = WebhookDelivery.objects.get(pk=self.intake["delivery"])
            self.body = {
                "status": delivery.status,
                "delivery": delivery.pk,
                "error": delivery.error,
            }

    def json(self) -> dict:
        return self.body


def processed(response) -> Processed:
    return Processed(response)


@pytest.fixture
def webhook_worker(settings):
    """A webhook worker (the `process_webhooks` loop, woken by LISTEN/NOTIFY on
    PostgreSQL) in a thread of this process, for tests that serve requests (live_server)."""
    import threading

    from django.db import connection

    from payments.management.commands.process_webhooks import work

    settings.WEBHOOK_WORKER_IDLE_SECONDS = 0.2
    stop = threading.Event()

    def run():
        try:
            work(size=100, should_stop=stop.is_set)
        finally:
            connection.close()

    thread = threading.Thread(target=run, name="webhook-worker", daemon=True)
    thread.start()
    yield thread
    stop.set()
    thread.join(timeout=10)
