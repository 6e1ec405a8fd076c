"""Confirma's deployment checks (config/checks.py): each fires on the configuration it is
about and stays silent on a good one; `manage.py check --deploy` runs them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error, Warning
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from config import checks

ROOT = Path(__file__).resolve().parents[2]

POSTGRES = {"ENGINE": "django.db.backends.postgresql", "NAME": "confirma"}
SQLITE = {"ENGINE": "django.db.backends.sqlite3", "NAME": "confirma.sqlite3"}
REDIS = {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer"}}
MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
NO_PROVIDERS = {name: "" for names in checks.PROVIDER_SECRETS.values() for name in names}


def ids(messages) -> list[str]:
    return [message.id for message in messages]


@pytest.fixture
def no_providers(settings):
    for name, value in NO_PROVIDERS.items():
        setattr(settings, name, value)
    return settings


# --- database and channel layer ------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_sqlite_is_an_error(settings):
    settings.DATABASES = {"default": SQLITE}
    [message] = checks.check_database()
    assert isinstance(message, Error) and message.id == "confirma.E001"
    assert "sqlite3" in message.msg and "DATABASE_URL" in message.hint


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_postgresql_passes(settings):
    settings.DATABASES = {"default": POSTGRES}
    assert checks.check_database() == []


def test_the_in_process_channel_layer_is_an_error(settings):
    settings.CHANNEL_LAYERS = MEMORY
    [message] = checks.check_channel_layer()
    assert isinstance(message, Error) and message.id == "confirma.E002"
    assert "REDIS_URL" in message.hint


@pytest.mark.parametrize(
    "backend",
    ["channels_redis.pubsub.RedisPubSubChannelLayer", "channels_redis.core.RedisChannelLayer"],
)
def test_a_redis_channel_layer_passes(settings, backend):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend}}
    assert checks.check_channel_layer() == []


# --- providers -----------------------------------------------------------------------------


def test_no_provider_at_all_is_a_warning(no_providers):
    [message] = checks.check_providers()
    assert isinstance(message, Warning) and message.id == "confirma.W001"


def test_a_partly_configured_provider_is_an_error_naming_what_is_missing(no_providers):
    no_providers.MERCADOPAGO_ACCESS_TOKEN = "APP_USR-token"
    no_providers.CLICK_SECRET_KEY = "click-secret"
    no_providers.CLICK_SERVICE_ID = "123"
    no_providers.KIOSK_WEBHOOK_SECRET = "whsec_a2lvc2s="
    messages = [m for m in checks.check_providers() if m.id == "confirma.E003"]
    assert [type(m) for m in messages] == [Error, Error]
    assert "Mercado Pago" in messages[0].msg and "MERCADOPAGO_WEBHOOK_SECRET" in messages[0].msg
    assert "MERCADOPAGO_ACCESS_TOKEN" not in messages[0].msg
    assert "Click" in messages[1].msg and "CLICK_MERCHANT_ID" in messages[1].msg


@pytest.mark.parametrize("provider", list(checks.PROVIDER_SECRETS))
def test_each_fully_configured_provider_passes(no_providers, provider):
    for name in checks.PROVIDER_SECRETS[provider]:
        setattr(no_providers, name, f"value-of-{name.lower()}")
    address = checks.PROVIDER_ADDRESSES.get(provider)
    if address:
        setattr(no_providers, address, "https://api.provider.example")
    assert checks.check_providers() == []


def test_a_configured_provider_on_plain_http_is_a_warning(no_providers):
    no_providers.MERCADOPAGO_ACCESS_TOKEN = "APP_USR-token"
    no_providers.MERCADOPAGO_WEBHOOK_SECRET = "secret"
    no_providers.MERCADOPAGO_API_BASE = "http://127.0.0.1:8010"
    [message] = checks.check_providers()
    assert message.id == "confirma.W006" and "MERCADOPAGO_API_BASE" in message.msg


def test_an_unused_provider_on_plain_http_is_not_reported(no_providers):
    no_providers.KIOSK_WEBHOOK_SECRET = "whsec_a2lvc2s="
    no_providers.NOWPAYMENTS_API_BASE = "http://127.0.0.1:8011/nowpayments"
    assert checks.check_providers() == []


# --- public address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://127.0.0.1:8000", ["confirma.W002", "confirma.W003"]),
        ("https://localhost", ["confirma.W003"]),
        ("https://[::1]:8443", ["confirma.W003"]),
        ("https://10.0.0.5", ["confirma.W003"]),
        ("https://192.168.1.20/confirma", ["confirma.W003"]),
        ("https://0.0.0.0", ["confirma.W003"]),
        ("https://kiosk.local", ["confirma.W003"]),
        ("http://confirma.example.com", ["confirma.W002"]),
        ("", ["confirma.W002"]),
        ("confirma.example.com", ["confirma.W002"]),
    ],
)
def test_a_public_url_providers_cannot_use_is_reported(settings, url, expected):
    settings.PUBLIC_BASE_URL = url
    messages = checks.check_public_base_url()
    assert ids(messages) == expected
    assert all(isinstance(m, Warning) for m in messages)


@pytest.mark.parametrize("url", ["https://confirma.example.com", "https://8.8.8.8:8443/pay"])
def test_a_public_https_url_passes(settings, url):
    settings.PUBLIC_BASE_URL = url
    assert checks.check_public_base_url() == []


# --- media ---------------------------------------------------------------------------------


@pytest.fixture
def media(settings, tmp_path):
    public, private = tmp_path / "media", tmp_path / "private"
    public.mkdir(mode=0o750)
    private.mkdir(mode=0o700)
    settings.MEDIA_ROOT, settings.PRIVATE_MEDIA_ROOT = public, private
    settings.FILE_UPLOAD_PERMISSIONS = 0o640
    settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o750
    return settings


def test_private_media_directories_pass(media):
    assert checks.check_media_permissions() == []


def test_directories_not_created_yet_pass(media, tmp_path):
    media.PRIVATE_MEDIA_ROOT = tmp_path / "not-yet"
    assert checks.check_media_permissions() == []


@pytest.mark.parametrize("name, mode", [("PRIVATE_MEDIA_ROOT", 0o755), ("MEDIA_ROOT", 0o777)])
def test_a_media_directory_open_to_others_is_reported(media, name, mode):
    path = Path(getattr(media, name))
    path.chmod(mode)
    [message] = checks.check_media_permissions()
    assert message.id == "confirma.W004"
    assert name in message.msg and f"{mode:04o}" in message.msg


@pytest.mark.parametrize(
    "name, mode",
    [
        ("FILE_UPLOAD_PERMISSIONS", 0o644),
        ("FILE_UPLOAD_PERMISSIONS", None),
        ("FILE_UPLOAD_DIRECTORY_PERMISSIONS", 0o755),
        ("FILE_UPLOAD_DIRECTORY_PERMISSIONS", None),
    ],
)
def test_upload_permissions_open_to_others_are_reported(media, name, mode):
    setattr(media, name, mode)
    [message] = checks.check_media_permissions()
    assert message.id == "confirma.W005" and name in message.msg


def test_uploads_are_stored_closed_to_other_users(tmp_path):
    """What the settings give a proof saved through a storage: no access for others (proofs
    used to be stored 0644, readable by every user of the machine)."""
    storage = FileSystemStorage(location=tmp_path / "private")
    name = storage.save("proofs/2026/receipt.png", ContentFile(b"\x89PNG not really"))
    path = Path(storage.path(name))
    assert path.stat().st_mode & 0o007 == 0
    assert path.parent.stat().st_mode & 0o007 == 0
    assert (tmp_path / "private").stat().st_mode & 0o007 == 0


# --- the test profile ------------------------------------------------------------------------


def test_the_test_profile_is_an_error_in_a_deployment(settings):
    settings.TESTING = True
    assert ids(checks.check_testing_profile()) == ["confirma.E004"]
    settings.TESTING = False
    assert checks.check_testing_profile() == []


def test_atomic_requests_is_an_error_at_every_check(monkeypatch):
    from django.conf import settings

    # In place (and put back by monkeypatch): replacing DATABASES itself warns.
    monkeypatch.setitem(settings.DATABASES["default"], "ATOMIC_REQUESTS", True)
    assert ids(checks.check_atomic_requests()) == ["confirma.E005"]
    monkeypatch.undo()
    assert checks.check_atomic_requests() == []


def test_atomic_requests_from_the_database_url_stops_a_plain_check(tmp_path):
    """Not only --deploy: `manage.py check` (and so migrate) refuses it."""
    done = manage(
        ["check"],
        {
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}?atomic_requests=true",
        },
    )
    assert done.returncode != 0
    assert "confirma.E005" in done.stdout + done.stderr


# --- manage.py check --deploy ------------------------------------------------------------------


def manage(args, env_extra):
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_reports_the_misconfigured_deployment(tmp_path):
    """SQLite, no REDIS_URL, no provider secret, a loopback PUBLIC_BASE_URL and proofs open
    to every user: `check --deploy` used to say "no issues"."""
    private = tmp_path / "private"
    private.mkdir()
    private.chmod(0o755)
    done = manage(
        ["check", "--deploy", "--fail-level", "WARNING"],
        {
            "DEBUG": "false",
            "SECRET_KEY": "k" * 60,
            "ALLOWED_HOSTS": "confirma.example.com",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "PRIVATE_MEDIA_ROOT": str(private),
        },
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    for check_id in ("E001", "E002", "W001", "W002", "W003", "W004"):
        assert f"confirma.{check_id}" in output, check_id
    assert "no issues" not in output


def test_check_deploy_without_warnings_fails_only_on_errors(tmp_path):
    """Without --fail-level, warnings are shown and only errors make the exit status."""
    done = manage(
        ["check", "--deploy"],
        {
            "DEBUG": "false",
            "SECRET_KEY": "k" * 60,
            "ALLOWED_HOSTS": "confirma.example.com",
            "DATABASE_URL": "postgres://u@db.invalid:5432/x",
            "REDIS_URL": "redis://cache.invalid:6379/0",
            "MEDIA_ROOT": str(tmp_path / "media"),
            "PRIVATE_MEDIA_ROOT": str(tmp_path / "private"),
        },
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "confirma.W001" in output and "confirma.W003" in output
    assert "confirma.E00" not in output
