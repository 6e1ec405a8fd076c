"""WSGI entry point (HTTP only; WebSockets need the ASGI application under daphne).

Provider webhooks (`WEBHOOK_PATH_PREFIXES`) are served by a handler of their own with only
the middleware a machine-to-machine POST needs (`WEBHOOK_MIDDLEWARE`): no session, login,
CSRF, language, messages, static files or page helpers, whose work would be thrown away
on every notification. Everything else goes through the full `MIDDLEWARE`.
"""

import os

import django
from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.utils import translation

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


class _WebhookHandler(WSGIHandler):
    def load_middleware(self, is_async=False):
        # Django's loader reads settings.MIDDLEWARE; it is swapped only while this handler
        # is built, at start-up, before any request.
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.WEBHOOK_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class _Dispatch:
    def __init__(self) -> None:
        django.setup(set_prefix=False)
        self.pages = WSGIHandler()
        self.webhooks = _WebhookHandler()
        self.prefixes = tuple(settings.WEBHOOK_PATH_PREFIXES)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(self.prefixes):
            # In the site's language, whatever page this thread served last (there is no
            # LocaleMiddleware to choose one, and texts stored by a synchronous protocol's
            # processing, such as alerts, would otherwise take that page's language).
            with translation.override(settings.LANGUAGE_CODE):
                return self.webhooks(environ, start_response)
        return self.pages(environ, start_response)


application = _Dispatch()
