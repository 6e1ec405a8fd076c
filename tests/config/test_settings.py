"""Settings come from the environment only; the production profile passes --deploy."""

import json
import os
import subprocess
import sys

PRINT_SETTINGS = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'db': s.DATABASES['default']['ENGINE'], "
    "'layer': s.CHANNEL_LAYERS['default']['BACKEND'], 'tasks': s.TASKS['default']['BACKEND'], "
    "'debug': s.DEBUG}))"
)


def run(code_or_args, env_extra, *, python_code=False):
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(env_extra)
    args = (
        [sys.executable, "-c", code_or_args]
        if python_code
        else [sys.executable, "manage.py", *code_or_args]
    )
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)


def test_debug_alone_gives_the_embedded_default():
    done = run(PRINT_SETTINGS, {"DEBUG": "true"}, python_code=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "db": "django.db.backends.sqlite3",
        "layer": "channels.layers.InMemoryChannelLayer",
        "tasks": "django_tasks_db.DatabaseBackend",
        "debug": True,
    }


def test_debug_is_off_when_the_variable_is_unset():
    done = run(PRINT_SETTINGS, {"SECRET_KEY": "s" * 60}, python_code=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["debug"] is False


def test_no_environment_at_all_asks_for_a_secret_key_or_debug():
    """DEBUG is off by default, so a bare environment is a production one without a key."""
    done = run(PRINT_SETTINGS, {}, python_code=True)
    assert done.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off (DEBUG=true" in done.stderr


PROFILE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
    "'ssl_redirect': s.SECURE_SSL_REDIRECT, 'key': bool(s.SECRET_KEY), "
    "'static': s.STORAGES['staticfiles']['BACKEND'].rsplit('.', 1)[-1]}))"
)


def test_a_test_run_gets_the_local_profile_with_debug_off():
    """CONFIRMA_TESTING=true (scripts/test.sh) needs no SECRET_KEY, serves the test hosts
    over plain HTTP and static files from the source tree; DEBUG stays off."""
    done = run(PROFILE, {"CONFIRMA_TESTING": "true"}, python_code=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "debug": False,
        "hosts": ["localhost", "127.0.0.1", "[::1]"],
        "ssl_redirect": False,
        "key": True,
        "static": "StaticFilesStorage",
    }


def test_database_and_redis_urls_switch_backends():
    done = run(
        PRINT_SETTINGS,
        {
            "DEBUG": "true",
            "DATABASE_URL": "postgres://u@db.invalid:5432/x",
            "REDIS_URL": "redis://cache.invalid:6379/0",
        },
        python_code=True,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["db"] == "django.db.backends.postgresql"
    assert data["layer"] == "channels_redis.pubsub.RedisPubSubChannelLayer"


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "-production-key-for-the-check-only-" + "y" * 20,
    "ALLOWED_HOSTS": "confirma.example.com",
}


def test_production_profile_passes_check_deploy_without_warnings(tmp_path):
    """A complete production environment: PostgreSQL, Redis, a provider's secrets, a public
    https address and upload directories closed to other users."""
    media, private = tmp_path / "media", tmp_path / "private"
    media.mkdir(mode=0o750)
    private.mkdir(mode=0o700)
    env = {
        "SECRET_KEY": PRODUCTION["SECRET_KEY"],
        "ALLOWED_HOSTS": PRODUCTION["ALLOWED_HOSTS"],  # and DEBUG unset: off by default
        "DATABASE_URL": "postgres://confirma@db.invalid:5432/confirma",
        "REDIS_URL": "redis://cache.invalid:6379/0",
        "MERCADOPAGO_ACCESS_TOKEN": "APP_USR-check-only",
        "MERCADOPAGO_WEBHOOK_SECRET": "check-only-secret",
        "PUBLIC_BASE_URL": "https://confirma.example.com",
        "MEDIA_ROOT": str(media),
        "PRIVATE_MEDIA_ROOT": str(private),
    }
    done = run(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_production_profile_requires_a_secret_key():
    env = dict(PRODUCTION)
    del env["SECRET_KEY"]
    done = run(["check"], env)
    assert done.returncode != 0
    assert "SECRET_KEY must be set" in done.stderr


def test_env_example_lists_every_variable_the_settings_read():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    settings_text = (root / "config" / "settings.py").read_text()
    read = set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_]+)"', settings_text))
    listed = set(re.findall(r"^#?\s*([A-Z_]+)=", (root / ".env.example").read_text(), re.M))
    assert read, "no variables found"
    assert read <= listed, f"missing from .env.example: {sorted(read - listed)}"
