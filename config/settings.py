"""Confirma settings.

Every value comes from the environment through django-environ; `.env.example` lists each
variable. With DEBUG=true and nothing else the embedded default runs: an SQLite file under
`var/`, an in-process channel layer and the database task backend. DEBUG is off unless
set; `manage.py check --deploy` runs Confirma's own deployment checks (config/checks.py).
"""

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import environ
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Off unless asked for: `make run` (scripts/run.sh) turns it on for the demo.
DEBUG = env.bool("DEBUG", default=False)
TESTING = env.bool("CONFIRMA_TESTING", default=False)
# The local profile: a generated SECRET_KEY, loopback ALLOWED_HOSTS, static files from the
# source tree, readable logs, no HTTPS enforcement. DEBUG=true turns it on, and so does a
# test run (CONFIRMA_TESTING=true), which Django's test runner runs with DEBUG off anyway.
# Anything else gets the production profile (`manage.py check --deploy` reports the rest).
LOCAL_PROFILE = DEBUG or TESTING


def _development_secret_key() -> str:
    """A per-checkout key kept in var/ (never committed) so sessions survive restarts."""
    path = VAR_DIR / "secret_key"
    if path.exists():
        return path.read_text().strip()
    VAR_DIR.mkdir(exist_ok=True)
    key = get_random_secret_key()
    path.write_text(key)
    path.chmod(0o600)
    return key


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not LOCAL_PROFILE:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DEBUG is off (DEBUG=true for local development)."
        )
    SECRET_KEY = _development_secret_key()

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if LOCAL_PROFILE else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Confirma's own apps come first so their management commands (db_worker) win.
    "core",
    "config.apps.ConfigConfig",
    "notifications",
    "payments",
    "subscriptions",
    "tickets",
    "orders",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "config.middleware.EventsCursorMiddleware",
    "config.middleware.AdminBusinessTimeMiddleware",
    # Last, as django-axes asks: turns a locked login into the lockout page.
    "axes.middleware.AxesMiddleware",
]
# Provider webhooks need none of the page middleware (config/wsgi.py serves these paths
# with this list only).
WEBHOOK_PATH_PREFIXES = ["/webhooks/"]
WEBHOOK_MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "config.context_processors.navigation",
            ],
        },
    }
]

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'confirma.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(exist_ok=True)
    # WAL and immediate transactions let daphne, the worker and commands share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    # Each gunicorn thread keeps its connection (checked before reuse) for a minute.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channels --------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
# Names in Redis start with this (channel groups, cache keys, the webhook workers' wake-up):
# deployments sharing one Redis keep apart by it.
CHANNELS_PREFIX = env.str("CHANNELS_PREFIX", default="confirma")
if REDIS_URL:
    # Redis pub/sub: one PUBLISH per group message, which every daphne process fans out to
    # its own connections in memory (docs/performance.md). Nothing is queued in Redis: a
    # screen that missed a push catches up from the event log when it resumes.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {
                # Fail fast when Redis is away; pushes are best effort (event log + resume).
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 2, "socket_timeout": 5}],
                "prefix": CHANNELS_PREFIX,
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Cache (throttling counts) ---------------------------------------------------------
# With Redis every server process shares the counts; without it each process keeps its own.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CHANNELS_PREFIX,
            # Fail fast when Redis is away: throttling then lets requests through.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Events ----------------------------------------------------------------------------
# Replaying more than this many missed events sends one "resync" frame instead.
EVENTS_MAX_BACKLOG = env.int("EVENTS_MAX_BACKLOG", default=500)
# Seconds between heartbeat frames on idle WebSocket connections.
EVENTS_HEARTBEAT_SECONDS = env.float("EVENTS_HEARTBEAT_SECONDS", default=25.0)
# A connection that could not join the channel layer (Redis down) reads the log this often
# (seconds) until it joins, instead of at heartbeats only.
EVENTS_DEGRADED_POLL_SECONDS = env.float("EVENTS_DEGRADED_POLL_SECONDS", default=5.0)
# Without Redis, each server process polls the event log this often (seconds) so events
# published by other processes (worker, commands) still reach its connections.
EVENTS_POLL_INTERVAL = env.float("EVENTS_POLL_INTERVAL", default=0.0 if REDIS_URL else 0.5)
# Lifetime of signed display/kiosk tokens when the caller does not choose one (seconds).
EVENTS_TOKEN_MAX_AGE = env.int("EVENTS_TOKEN_MAX_AGE", default=24 * 3600)

# --- Background tasks --------------------------------------------------------------------
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
# /healthz calls the worker healthy when its last heartbeat is younger than this (seconds).
WORKER_HEARTBEAT_MAX_AGE = env.int("WORKER_HEARTBEAT_MAX_AGE", default=30)
WORKER_HEARTBEAT_INTERVAL = env.float("WORKER_HEARTBEAT_INTERVAL", default=5.0)
# A task left RUNNING this long (seconds) by a worker without a heartbeat is orphaned:
# `monitor_payments check --repair` runs it again (idempotent ones) or marks it failed.
TASK_ORPHAN_SECONDS = env.int("TASK_ORPHAN_SECONDS", default=300)
# Bearer token that gets /healthz's details (database, channel layer, worker) without a
# staff session, for monitoring; unset, only staff see them. Anyone gets the status alone.
HEALTH_TOKEN = env.str("HEALTH_TOKEN", default="")

# --- Auth ------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"
ROLES = ("cashier", "waiter", "kitchen", "operator", "staff")

# Password guessing: django-axes refuses logins (the site's and the admin's) after
# LOGIN_FAILURE_LIMIT failures, for LOGIN_COOLOFF_MINUTES after the last one (0: until staff
# delete the access attempt in the admin, or run `manage.py axes_reset_username`).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
_cooloff_minutes = env.int("LOGIN_COOLOFF_MINUTES", default=15)
AXES_COOLOFF_TIME = timedelta(minutes=_cooloff_minutes) if _cooloff_minutes > 0 else None
# What failures are counted against: "username", "ip_address", "user_agent", several joined
# by "+" (counted together), comma-separated to lock on either. By default one account from
# one address: a guesser locks only itself, never the staff behind a restaurant's one address.
AXES_LOCKOUT_PARAMETERS = [
    item.split("+") if "+" in item else item
    for item in env.list("LOGIN_LOCKOUT_BY", default=["username+ip_address"])
]
AXES_RESET_ON_SUCCESS = True
# Attempts while locked neither count nor extend the pause, so the page's "N minutes after the
# last failed attempt" stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "core.login.lockout_response"
# The client's address (TRUSTED_PROXY_COUNT), an IPv6 one counted as its /64.
AXES_CLIENT_IP_CALLABLE = "core.login.login_address"
# Successful logins are kept (the admin's "Access logs"): the account cap spares the
# addresses an account logged in from (core/login.py keeps the latest per address).
AXES_DISABLE_ACCESS_LOG = False
AXES_VERBOSE = False  # no banner at every process start


def _login_window(name: str) -> int:
    minutes = env.int(name, default=60)
    if minutes < 1:
        raise ImproperlyConfigured(f"{name} must be 1 minute or more: {minutes}")
    return minutes


# Looser caps over the one-account-from-one-address lock (core/login.py): an account is
# refused from every address it never logged in from once LOGIN_ACCOUNT_FAILURE_LIMIT
# failures (from such addresses) fall within the last LOGIN_ACCOUNT_WINDOW_MINUTES, and an
# address is refused for every account likewise; 0 turns a cap off. Counted in axes' access
# failure log (the admin's "Access failures"); `manage.py axes_reset_username` /
# `axes_reset_ip` lift them.
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=30)
LOGIN_ACCOUNT_WINDOW_MINUTES = _login_window("LOGIN_ACCOUNT_WINDOW_MINUTES")
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=50)
LOGIN_ADDRESS_WINDOW_MINUTES = _login_window("LOGIN_ADDRESS_WINDOW_MINUTES")
AXES_HANDLER = "core.login.LoginCapsHandler"
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Proxies in front of Confirma that append the client's address to X-Forwarded-For (1 behind
# the nginx of docs/performance.md). 0 trusts no such header: every address is REMOTE_ADDR.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)


def _rate(name: str, default: str) -> str | None:
    """A request rate like "10/min" (per s, min, hour or day); empty turns the limit off."""
    rate = env.str(name, default=default).strip()
    if rate and not re.fullmatch(r"[0-9]+/(s|sec|second|m|min|minute|h|hour|d|day)", rate):
        raise ImproperlyConfigured(f"{name} must be like 10/min, or empty: {rate!r}")
    return rate or None


REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "core.authentication.StorableTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # Per user, or per address for anonymous callers (core/throttling.py).
    "DEFAULT_THROTTLE_RATES": {
        # Each new session creates a payment at the provider.
        "payment_session_create": _rate("THROTTLE_PAYMENT_SESSION_CREATE", "10/min"),
        "proof_upload": _rate("THROTTLE_PROOF_UPLOAD", "20/min"),
        # Per kiosk, not per address: the kiosks of a store often share one address (and
        # its guest Wi-Fi), and each serves a queue of customers.
        "kiosk_ticket": _rate("THROTTLE_KIOSK_TICKET", "30/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Confirma API",
    "DESCRIPTION": "Payment sessions, confirmations and the live state of what was paid for. "
    "The events pushed live on the WebSocket /ws/events/ are described in the "
    "[AsyncAPI catalogue](/api/events/asyncapi.json).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Internationalisation ----------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [
    ("en", _("English")),
    ("pt-br", _("Portuguese (Brazil)")),
    ("es", _("Spanish")),
    ("uz", _("Uzbek")),
    ("ru", _("Russian")),
]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
# Where the business is: pages show times in this zone (stored times stay UTC).
BUSINESS_TIME_ZONE = env.str("BUSINESS_TIME_ZONE", default="America/Sao_Paulo")
try:
    ZoneInfo(BUSINESS_TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError) as error:
    raise ImproperlyConfigured(
        f"BUSINESS_TIME_ZONE={BUSINESS_TIME_ZONE!r} is not an IANA time zone "
        '(for example "America/Sao_Paulo", "Asia/Tashkent", "UTC").'
    ) from error
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if LOCAL_PROFILE
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = LOCAL_PROFILE
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
# Uploaded files (payment proofs among them) are readable by Confirma's user and group only.
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750

# --- Security (production profile) ---------------------------------------------------------
if not LOCAL_PROFILE:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Check ids (e.g. confirma.W001) a deployment has decided to accept; see config/checks.py.
SILENCED_SYSTEM_CHECKS = env.list("SILENCED_SYSTEM_CHECKS", default=[])
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Mail ----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
globals().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="confirma@localhost")
ADMINS = [("Confirma staff", a) for a in env.list("ADMIN_EMAILS", default=[])]

# --- Providers (secrets only from the environment) --------------------------------------------
MERCADOPAGO_ACCESS_TOKEN = env.str("MERCADOPAGO_ACCESS_TOKEN", default="")
MERCADOPAGO_WEBHOOK_SECRET = env.str("MERCADOPAGO_WEBHOOK_SECRET", default="")
MERCADOPAGO_API_BASE = env.str("MERCADOPAGO_API_BASE", default="https://api.mercadopago.com")
CLICK_SERVICE_ID = env.str("CLICK_SERVICE_ID", default="")
CLICK_MERCHANT_ID = env.str("CLICK_MERCHANT_ID", default="")
CLICK_SECRET_KEY = env.str("CLICK_SECRET_KEY", default="")
# Click's payment page the checkout redirects to (the demo points it at a local fake).
CLICK_PAY_URL = env.str("CLICK_PAY_URL", default="https://my.click.uz/services/pay")
NOWPAYMENTS_API_KEY = env.str("NOWPAYMENTS_API_KEY", default="")
NOWPAYMENTS_IPN_SECRET = env.str("NOWPAYMENTS_IPN_SECRET", default="")
NOWPAYMENTS_API_BASE = env.str("NOWPAYMENTS_API_BASE", default="https://api.nowpayments.io")
COINBASE_COMMERCE_API_KEY = env.str("COINBASE_COMMERCE_API_KEY", default="")
COINBASE_COMMERCE_WEBHOOK_SECRET = env.str("COINBASE_COMMERCE_WEBHOOK_SECRET", default="")
COINBASE_COMMERCE_API_BASE = env.str(
    "COINBASE_COMMERCE_API_BASE", default="https://api.commerce.coinbase.com"
)
KIOSK_WEBHOOK_SECRET = env.str("KIOSK_WEBHOOK_SECRET", default="")
PRINTER_URL = env.str("PRINTER_URL", default="dummy:")

# --- Logging -------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if LOCAL_PROFILE else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "core.logging.RedactSecretsFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {"()": "core.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT if LOG_FORMAT in ("text", "json") else "text",
            "filters": ["redact"],
        },
        "null": {"class": "logging.NullHandler"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        "daphne": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        # Failed logins and lockouts are warnings; every successful login would be 4 lines.
        "axes": {"level": "WARNING"},
        # Alert URLs hold tokens, which Apprise's messages and urllib3's debug lines quote:
        # Confirma logs each alert attempt itself (notifications/alert_delivery.py).
        "apprise": {"handlers": ["null"], "level": "WARNING", "propagate": False},
        "urllib3": {"level": "INFO"},
    },
}

# --- Periodic jobs (run by `manage.py run_periodic` in the one-command run, or cron) ---------
EVENTS_RETENTION = env.str("EVENTS_RETENTION", default="30d")
PERIODIC_JOBS = [
    {"command": "prune", "every": 3600},
    {"command": "expire_payment_sessions", "every": 60},
    {"command": "retry_webhooks", "every": 30},
    {"command": "recover_print_jobs", "every": 15},
    {"command": "complete_machine_sessions", "every": 5},
    {"command": "expire_subscriptions", "every": 60},
    {"command": "poll_providers", "every": 120},
    {"command": "monitor_payments", "args": ["check", "--repair"], "every": 300},
]

# --- Payments ------------------------------------------------------------------------------
# Minutes a new payment session stays payable (Mercado Pago PIX accepts 30 min to 30 days).
PAYMENT_SESSION_TTL_MINUTES = env.int("PAYMENT_SESSION_TTL_MINUTES", default=60)
# Minutes a PIX purchase of machine time holds its machine for the customer paying, from
# the click; the PIX itself stays payable for PAYMENT_SESSION_TTL_MINUTES. At least 1: the
# hold also keeps a customer to one PIX purchase while its payment is being created.
MACHINE_RESERVATION_MINUTES = env.int("MACHINE_RESERVATION_MINUTES", default=5)
if MACHINE_RESERVATION_MINUTES < 1:
    raise ImproperlyConfigured(
        f"MACHINE_RESERVATION_MINUTES must be 1 minute or more: {MACHINE_RESERVATION_MINUTES}"
    )
# Currency of credit wallets, and the top-up limits in it.
WALLET_CURRENCY = env.str("WALLET_CURRENCY", default="BRL")
WALLET_TOPUP_MIN = Decimal(env.str("WALLET_TOPUP_MIN", default="1.00"))
WALLET_TOPUP_MAX = Decimal(env.str("WALLET_TOPUP_MAX", default="5000.00"))
# Largest webhook body accepted (bytes); larger ones get 413 and are still logged.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=64 * 1024)
# Seconds a provider signature's timestamp may differ from our clock.
WEBHOOK_TIMESTAMP_TOLERANCE = env.int("WEBHOOK_TIMESTAMP_TOLERANCE", default=300)
# Confirma's own retries of failed deliveries: attempts and first back-off (seconds).
WEBHOOK_RETRY_MAX_ATTEMPTS = env.int("WEBHOOK_RETRY_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_BASE_SECONDS = env.int("WEBHOOK_RETRY_BASE_SECONDS", default=30)
# The webhook workers (`manage.py process_webhooks`): deliveries claimed per batch, seconds
# a claim lasts before another worker may take it (longer than any provider call), seconds
# an idle worker waits for a wake-up before it looks anyway (due retries, ended leases), and
# the age of the oldest waiting delivery that raises a backlog alert.
# A refused webhook's repeats are counted in memory and written every this many seconds
# (payments/services/refusals.py); 0 writes each at once (the tests' default).
WEBHOOK_REFUSAL_FLUSH_SECONDS = env.float(
    "WEBHOOK_REFUSAL_FLUSH_SECONDS", default=0.0 if TESTING else 1.0
)
WEBHOOK_BATCH_SIZE = env.int("WEBHOOK_BATCH_SIZE", default=100)
WEBHOOK_LEASE_SECONDS = env.int("WEBHOOK_LEASE_SECONDS", default=120)
WEBHOOK_WORKER_IDLE_SECONDS = env.float("WEBHOOK_WORKER_IDLE_SECONDS", default=2.0)
# Group commit of the intake on PostgreSQL (payments/services/group_commit.py): deliveries
# arriving together are stored in one INSERT and one COMMIT, at most this many; a request
# waits at most this many seconds for its row to be committed (then 503: the provider
# retries).
WEBHOOK_GROUP_COMMIT = env.bool("WEBHOOK_GROUP_COMMIT", default=True)
WEBHOOK_GROUP_COMMIT_MAX = env.int("WEBHOOK_GROUP_COMMIT_MAX", default=100)
WEBHOOK_GROUP_COMMIT_WAIT_SECONDS = env.float("WEBHOOK_GROUP_COMMIT_WAIT_SECONDS", default=10.0)
# Where the intake wakes the workers when a delivery is stored: a Redis channel when Redis
# is there (every node's workers hear it), otherwise PostgreSQL's NOTIFY of this name.
WEBHOOK_WAKE_CHANNEL = f"{CHANNELS_PREFIX}:deliveries"
WEBHOOK_BACKLOG_ALERT_SECONDS = env.int("WEBHOOK_BACKLOG_ALERT_SECONDS", default=120)
# Serve webhooks from a thread pool of their own (in parallel) rather than in the single
# thread ASGI gives Django's sync views. config/asgi.py turns it on when daphne serves HTTP;
# under gunicorn (WSGI) they are plain sync views in gunicorn's threads.
WEBHOOKS_IN_THREAD_POOL = env.bool("WEBHOOKS_IN_THREAD_POOL", default=False)
# Open payments older than this (seconds) are looked up at the provider by poll_providers.
PROVIDER_POLL_AFTER_SECONDS = env.int("PROVIDER_POLL_AFTER_SECONDS", default=600)
# Seconds to wait for a provider's API (payment creation, lookups).
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=8.0)
# Public base URL providers post notifications to (e.g. https://confirma.example.com).
PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")
# Local fake providers for the demo and tests; never on in production.
FAKE_PROVIDERS = env.bool("FAKE_PROVIDERS", default=False) and DEBUG
# Their app (fake servers' commands, the Simulate buttons' simulators) is installed only
# then, and in the test run, whose tests switch FAKE_PROVIDERS on and off as they go.
if FAKE_PROVIDERS or TESTING:
    INSTALLED_APPS.append("fakeproviders.apps.FakeProvidersConfig")

# --- Tickets and printing ----------------------------------------------------------------------
BUSINESS_NAME = env.str("BUSINESS_NAME", default="Confirma")
# Seconds to connect, write and get the status of a network printer (each step).
PRINT_TIMEOUT_SECONDS = env.float("PRINT_TIMEOUT_SECONDS", default=3.0)
# Attempts per print job, and the first back-off between them (seconds, doubling).
PRINT_MAX_ATTEMPTS = env.int("PRINT_MAX_ATTEMPTS", default=3)
PRINT_RETRY_BASE_SECONDS = env.float("PRINT_RETRY_BASE_SECONDS", default=2.0)
# The public display board audience that shows called tickets (display:<name>).
TICKET_DISPLAY = env.str("TICKET_DISPLAY", default="lobby")
# Seconds the kiosk shows a final screen before going back to the start.
KIOSK_RESET_SECONDS = env.int("KIOSK_RESET_SECONDS", default=20)

# --- Restaurant orders ---------------------------------------------------------------------------
ORDERS_CURRENCY = env.str("ORDERS_CURRENCY", default="MXN")
# Largest payment-proof upload (bytes).
PROOF_MAX_BYTES = env.int("PROOF_MAX_BYTES", default=5_000_000)
# Most pages a PDF proof may have (a receipt has one or two).
PROOF_PDF_MAX_PAGES = env.int("PROOF_PDF_MAX_PAGES", default=20)
# Uploaded proofs live here; this directory is never served directly.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=VAR_DIR / "private")

# --- Operations ---
# Seconds during which a repeat of the same alert (code + context) only counts, unannounced.
ALERT_DEDUPE_SECONDS = env.int("ALERT_DEDUPE_SECONDS", default=900)
# Where alerts are sent: Apprise URLs (slack://…, discord://…, tgram://…, workflows://…,
# mailtos://…, json://…) separated by spaces or commas. They hold tokens: never logged.
# A separator followed by no scheme:// belongs to the URL (mailtos://…?to=a@x.com,b@x.com).
ALERT_URLS = [
    url.strip(" ,;")
    for url in re.split(r"[\s,;]+(?=[A-Za-z0-9+.-]+://)", env.str("ALERT_URLS", default=""))
    if url.strip(" ,;")
]
# Deprecated: one URL that receives Confirma's own JSON; sent to as if ALERT_URLS held
# confirmas://… (https) or confirma://… (http) with the same address.
ALERT_WEBHOOK_URL = env.str("ALERT_WEBHOOK_URL", default="")
# Attempts to deliver one alert to each alert URL (waits doubling from 30 s).
ALERT_WEBHOOK_MAX_ATTEMPTS = env.int("ALERT_WEBHOOK_MAX_ATTEMPTS", default=5)
# Days resolved alerts are kept before `manage.py prune` deletes them.
ALERT_RETENTION_DAYS = env.int("ALERT_RETENTION_DAYS", default=90)
# Days webhook deliveries are kept (dead ones stay until staff resolve them).
WEBHOOK_RETENTION_DAYS = env.int("WEBHOOK_RETENTION_DAYS", default=90)
