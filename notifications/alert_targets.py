"""Where alerts go: the alert URLs of the settings, named without their secrets.

settings.ALERT_URLS holds Apprise URLs (Slack, Discord, Telegram, Microsoft Teams
workflows, e-mail, generic JSON and many more, one URL scheme each). Two schemes are
Confirma's own: `confirmas://host/path` (https) and `confirma://host/path` (http) post
Confirma's alert JSON, which is what the deprecated ALERT_WEBHOOK_URL posted; that setting
is read as one more entry of the list.

Alert URLs carry tokens in their host, path, user info or query: a delivery task names its
URL by a hash (`key`), and log lines by `label` (the service and, where it is a real host
name, the host), never by the URL.
"""

import hashlib
import ipaddress
import logging
import re
from dataclasses import dataclass

import apprise
from django.conf import settings

# Confirma's own alert JSON, to http (confirma://) or https (confirmas://).
CONFIRMA_SCHEMES = {"confirma": "http", "confirmas": "https"}
_URL = re.compile(r"^(?P<scheme>[A-Za-z0-9+.-]+)://(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.S)
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+$")


@dataclass(frozen=True)
class AlertTarget:
    url: str
    key: str


def alert_target_key(url: str) -> str:
    """A stable name for `url` that reveals nothing of it (kept in task arguments)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def confirma_url_from_webhook(url: str) -> str:
    """The alert URL that stands for a (deprecated) ALERT_WEBHOOK_URL: confirmas:// for
    https, confirma:// for http; any other URL is returned as it is (and reported by the
    checks as one no service can send to)."""
    scheme, sep, rest = url.strip().partition("://")
    mapped = {value: key for key, value in CONFIRMA_SCHEMES.items()}.get(scheme.lower())
    return f"{mapped}://{rest}" if sep and mapped else url.strip()


def alert_urls() -> list[str]:
    """Every alert URL, in order, each once: ALERT_URLS, then ALERT_WEBHOOK_URL."""
    urls = [url.strip() for url in settings.ALERT_URLS if url and url.strip()]
    if settings.ALERT_WEBHOOK_URL:
        urls.append(confirma_url_from_webhook(settings.ALERT_WEBHOOK_URL))
    return list(dict.fromkeys(urls))


def alert_targets() -> list[AlertTarget]:
    return [AlertTarget(url=url, key=alert_target_key(url)) for url in alert_urls()]


def alert_target_find(key: str) -> AlertTarget | None:
    """The configured target named `key`, or None once the settings no longer hold it."""
    return next((target for target in alert_targets() if target.key == key), None)


def url_host(url: str) -> str:
    """The host (and port) of `url` when it is a host name or an address; "" when that
    place holds something else (Slack and Discord put tokens there)."""
    match = _URL.match(url.strip())
    if not match:
        return ""
    hostport = match["netloc"].rpartition("@")[2]
    if hostport.startswith("["):
        return hostport
    host, _, port = hostport.partition(":")
    if not (_is_address(host) or host.lower() == "localhost" or _HOST_NAME.match(host)):
        return ""
    return f"{host}:{port}" if port.isdigit() else host


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def alert_target_label(url: str, service: str = "") -> str:
    """What log lines say of `url`: the service ("Slack", "JSON") and, when it is one, the
    host; never a token."""
    scheme = (_URL.match(url.strip()) or {"scheme": ""})["scheme"].lower()
    service = service or ("Confirma JSON" if scheme in CONFIRMA_SCHEMES else scheme or "URL")
    host = url_host(url)
    return f"{service} {host}" if host else service


def alert_url_problem(url: str) -> str:
    """Why no alert can be sent to `url` ("" when one can); says nothing of its tokens."""
    match = _URL.match(url.strip())
    if not match:
        return "it is not a URL (scheme://…)"
    if match["scheme"].lower() in CONFIRMA_SCHEMES:
        return "" if match["netloc"].rpartition("@")[2] else "it names no host"

    asset = apprise.AppriseAsset(storage_mode="memory", secure_logging=True)
    with apprise.LogCapture(level=logging.ERROR):
        service = apprise.Apprise.instantiate(url.strip(), asset=asset)
    if service is None:
        return f"no notification service takes {match['scheme']}:// URLs written this way"
    return ""
