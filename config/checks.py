"""Confirma's deployment checks, run by `manage.py check --deploy` (and by scripts/serve.sh
before it starts anything).

Django's own deploy checks look at Django's settings; these look at what Confirma needs in
production. Errors (confirma.E…) stop serve.sh: Confirma would lose or misapply work. Warnings
(confirma.W…) are security or reachability problems a deployment may knowingly accept, by
listing the id in SILENCED_SYSTEM_CHECKS. The ids are stable:

- E001 the database is not PostgreSQL;
- E002 the channel layer is not Redis;
- E003 a payment provider is partly configured (some of its secrets are missing);
- E004 the test profile (CONFIRMA_TESTING) is on;
- E005 a database has ATOMIC_REQUESTS on (checked always, not only with --deploy): every
  request would wrap the confirmations, which own their transaction and refuse to run
  inside another one (payments/services/transactions.py);
- W001 no payment provider is configured at all;
- W002 PUBLIC_BASE_URL is not an https:// URL;
- W003 PUBLIC_BASE_URL names this machine or a private network, which providers cannot reach;
- W004 a media directory (MEDIA_ROOT, PRIVATE_MEDIA_ROOT) is open to other users;
- W005 FILE_UPLOAD_PERMISSIONS or FILE_UPLOAD_DIRECTORY_PERMISSIONS open uploads to others;
- W006 a configured provider's API address is not https://.
"""

import ipaddress
import stat
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

TAG = "confirma"

# What each provider needs, by the settings that hold it: all of them, or none when the
# provider is not used.
PROVIDER_SECRETS = {
    "Mercado Pago": ("MERCADOPAGO_ACCESS_TOKEN", "MERCADOPAGO_WEBHOOK_SECRET"),
    "Kiosk terminal": ("KIOSK_WEBHOOK_SECRET",),
    "Click": ("CLICK_SERVICE_ID", "CLICK_MERCHANT_ID", "CLICK_SECRET_KEY"),
    "NOWPayments": ("NOWPAYMENTS_API_KEY", "NOWPAYMENTS_IPN_SECRET"),
    "Coinbase Commerce": ("COINBASE_COMMERCE_API_KEY", "COINBASE_COMMERCE_WEBHOOK_SECRET"),
}
# Where Confirma sends a provider's credentials or its customers.
PROVIDER_ADDRESSES = {
    "Mercado Pago": "MERCADOPAGO_API_BASE",
    "Click": "CLICK_PAY_URL",
    "NOWPayments": "NOWPAYMENTS_API_BASE",
    "Coinbase Commerce": "COINBASE_COMMERCE_API_BASE",
}
# Mode bits that give users other than Confirma's own (and its group) any access.
OTHERS = stat.S_IRWXO


def _configured(name: str) -> bool:
    return bool(getattr(settings, name, ""))


def providers_configured() -> list[str]:
    """Providers with at least one of their settings set (whether or not complete)."""
    return [
        provider
        for provider, names in PROVIDER_SECRETS.items()
        if any(_configured(name) for name in names)
    ]


@register(TAG, deploy=True)
def check_database(app_configs=None, **kwargs):
    engine = settings.DATABASES["default"]["ENGINE"]
    if engine == "django.db.backends.postgresql":
        return []
    return [
        Error(
            f"The database is {engine.rsplit('.', 1)[-1]}, not PostgreSQL.",
            hint="Set DATABASE_URL=postgres://…: confirmations lock rows and several "
            "processes write at once, which only PostgreSQL does safely.",
            id="confirma.E001",
        )
    ]


@register(TAG)
def check_atomic_requests(app_configs=None, **kwargs):
    return [
        Error(
            f"The {alias!r} database has ATOMIC_REQUESTS on.",
            hint="Remove atomic_requests from DATABASE_URL: confirmations own their "
            "transaction, so that money recorded stays recorded, and refuse to run inside "
            "the request's.",
            id="confirma.E005",
        )
        for alias, database in settings.DATABASES.items()
        if database.get("ATOMIC_REQUESTS")
    ]


@register(TAG, deploy=True)
def check_channel_layer(app_configs=None, **kwargs):
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    if backend.startswith("channels_redis."):
        return []
    return [
        Error(
            f"The channel layer is {backend.rsplit('.', 1)[-1] or 'missing'}, not Redis.",
            hint="Set REDIS_URL=redis://…: without it a live update reaches only the "
            "connections of the process that sent it.",
            id="confirma.E002",
        )
    ]


@register(TAG, Tags.security, deploy=True)
def check_providers(app_configs=None, **kwargs):
    configured = providers_configured()
    if not configured:
        return [
            Warning(
                "No payment provider is configured: every payment but wallet credit and "
                "manual proofs fails.",
                hint="Set the secrets of the providers you use ("
                + ", ".join(names[0] for names in PROVIDER_SECRETS.values())
                + ", …); see .env.example.",
                id="confirma.W001",
            )
        ]
    problems = []
    for provider in configured:
        missing = [name for name in PROVIDER_SECRETS[provider] if not _configured(name)]
        if missing:
            problems.append(
                Error(
                    f"{provider} is partly configured: {', '.join(missing)} not set.",
                    hint=f"Set every one of {', '.join(PROVIDER_SECRETS[provider])}, or "
                    "none to leave the provider unused.",
                    id="confirma.E003",
                )
            )
        address = PROVIDER_ADDRESSES.get(provider)
        if address and urlsplit(getattr(settings, address, "")).scheme != "https":
            problems.append(
                Warning(
                    f"{address} is not an https:// address.",
                    hint=f"{provider}'s credentials and customers would travel unencrypted "
                    "(local fakes are for DEBUG=true only).",
                    id="confirma.W006",
                )
            )
    return problems


@register(TAG, deploy=True)
def check_testing_profile(app_configs=None, **kwargs):
    if not getattr(settings, "TESTING", False):
        return []
    return [
        Error(
            "CONFIRMA_TESTING is on: the test profile (a generated secret key, no HTTPS "
            "enforcement) must never serve customers.",
            hint="Unset CONFIRMA_TESTING.",
            id="confirma.E004",
        )
    ]


def _private_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name; resolving it is not a check's business
    return not address.is_global


@register(TAG, Tags.security, deploy=True)
def check_public_base_url(app_configs=None, **kwargs):
    url = settings.PUBLIC_BASE_URL or ""
    parts = urlsplit(url)
    problems = []
    if parts.scheme != "https" or not parts.hostname:
        problems.append(
            Warning(
                f"PUBLIC_BASE_URL is {url or 'not set'}, not an https:// address.",
                hint="Set PUBLIC_BASE_URL=https://<your host>: providers post notifications "
                "and send customers back there.",
                id="confirma.W002",
            )
        )
    if parts.hostname and _private_host(parts.hostname):
        problems.append(
            Warning(
                f"PUBLIC_BASE_URL points at {parts.hostname}, which providers cannot reach.",
                hint="Payment notifications would never arrive (only the periodic lookups "
                "would confirm payments). Use the public name of this deployment.",
                id="confirma.W003",
            )
        )
    return problems


def _open_to_others(mode: int | None) -> bool:
    return mode is None or bool(mode & OTHERS)


@register(TAG, Tags.security, deploy=True)
def check_media_permissions(app_configs=None, **kwargs):
    problems = []
    for name in ("MEDIA_ROOT", "PRIVATE_MEDIA_ROOT"):
        value = getattr(settings, name, "")
        if not value:
            continue
        path = Path(value)
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue  # created on the first upload, with FILE_UPLOAD_DIRECTORY_PERMISSIONS
        except OSError as exc:
            problems.append(
                Warning(
                    f"{name} ({path}) cannot be read: {exc.strerror}.",
                    id="confirma.W004",
                )
            )
            continue
        if _open_to_others(mode):
            problems.append(
                Warning(
                    f"{name} ({path}) is open to other users (mode {mode:04o}).",
                    hint=f"chmod o-rwx {path}: it holds customers' uploads (payment proofs).",
                    id="confirma.W004",
                )
            )
    for name in ("FILE_UPLOAD_PERMISSIONS", "FILE_UPLOAD_DIRECTORY_PERMISSIONS"):
        mode = getattr(settings, name, None)
        if _open_to_others(mode):
            shown = "unset (the umask decides)" if mode is None else f"{mode:04o}"
            problems.append(
                Warning(
                    f"{name} is {shown}: uploaded files would be open to other users.",
                    hint=f"Set {name} without any permission for others (e.g. 0o640, 0o750).",
                    id="confirma.W005",
                )
            )
    return problems
