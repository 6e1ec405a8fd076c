import os

import pytest

from tests.conftest import CHROMIUM, _missing, _reachable, redis_url
from tests.e2e.stack import CHROMIUM_FLAGS, Stack


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


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright")
    if not os.path.exists(CHROMIUM):
        _missing(f"Chromium at {CHROMIUM}")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        yield chromium
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
