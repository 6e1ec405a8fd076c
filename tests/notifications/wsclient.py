"""Open /ws/events/ through the real ASGI application (origin check, session auth)."""

from urllib.parse import urlencode

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from config.asgi import application


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def ws_connect(
    *, user=None, token=None, since=None, seen=None, floor=None, origin=b"http://localhost"
):
    headers = [(b"host", b"localhost")]
    if origin:
        headers.append((b"origin", origin))
    if user is not None:
        key = await database_sync_to_async(_session_cookie)(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={key}".encode()))
    query = {}
    if token is not None:
        query["token"] = token
    if since is not None:
        query["since"] = str(since)
    if seen is not None:
        query["seen"] = seen
    if floor is not None:
        query["from"] = str(floor)
    path = "/ws/events/" + ("?" + urlencode(query) if query else "")
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        # Let the refused application finish now, not when the event loop is torn down.
        await communicator.disconnect(timeout=5)
    return communicator, connected, code


async def receive_frames(communicator, count: int, timeout: float = 3) -> list[dict]:
    frames = []
    while len(frames) < count:
        frame = await communicator.receive_json_from(timeout=timeout)
        if frame.get("type") != "heartbeat":
            frames.append(frame)
    return frames
