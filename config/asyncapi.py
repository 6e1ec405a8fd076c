"""The AsyncAPI 3.0 document of the events WebSocket, built from config/event_catalogue.py:
one channel, /ws/events/, whose messages are the catalogue's event types (each as the whole
frame clients receive) and the control frames, sent by Confirma, and the `ping` it answers.
"""

from config.event_catalogue import (
    CATALOGUE_VERSION,
    CONTROL_FRAMES,
    EVENTS,
    ID,
    WHEN,
    EventEntry,
    object_schema,
)

ASYNCAPI_VERSION = "3.0.0"


def frame_schema(entry: EventEntry) -> dict:
    """The JSON Schema of the whole frame that carries an event of `entry`."""
    return {
        "type": "object",
        "required": ["id", "type", "payload", "at"],
        "properties": {
            "id": {**ID, "description": "The event's cursor: resume with ?since=<id>."},
            "type": {"const": entry.type},
            "payload": entry.payload,
            "at": WHEN,
        },
        "additionalProperties": False,
    }


def _message_key(name: str) -> str:
    return name.replace(".", "_")


def _event_message(entry: EventEntry) -> dict:
    audiences = ", ".join(f"`{audience}`" for audience in entry.audiences)
    message = {
        "name": entry.type,
        "title": entry.type,
        "summary": entry.summary,
        "description": f"Audiences: {audiences}."
        + (
            " Front ends written before Confirma called it "
            + ", ".join(f"`{name}`" for name in entry.old_names)
            + "."
            if entry.old_names
            else ""
        ),
        "contentType": "application/json",
        "payload": frame_schema(entry),
        "examples": [
            {
                "name": _message_key(entry.type),
                "payload": {
                    "id": 1042,
                    "type": entry.type,
                    "payload": entry.example,
                    "at": "2026-12-06T10:00:00.123456+00:00",
                },
            }
        ],
        "x-audiences": list(entry.audiences),
    }
    if entry.old_names:
        message["x-old-names"] = list(entry.old_names)
    return message


def _control_message(kind: str) -> dict:
    summary, extra, example = CONTROL_FRAMES[kind]
    return {
        "name": kind,
        "title": kind,
        "summary": summary,
        "contentType": "application/json",
        "payload": object_schema({"type": {"const": kind}, **extra, "at": WHEN}),
        "examples": [{"name": kind, "payload": example}],
    }


def asyncapi_document() -> dict:
    """The AsyncAPI 3.0 document of the events WebSocket: every event type and control
    frame as a message Confirma sends, and the `ping` it answers."""
    messages = {_message_key(entry.type): _event_message(entry) for entry in EVENTS}
    messages |= {kind: _control_message(kind) for kind in CONTROL_FRAMES}
    messages["ping"] = {
        "name": "ping",
        "title": "ping",
        "summary": "Sent by the client; Confirma answers `pong`.",
        "contentType": "application/json",
        "payload": object_schema({"type": {"const": "ping"}}),
        "examples": [{"name": "ping", "payload": {"type": "ping"}}],
    }
    channel_ref = {"$ref": "#/channels/events"}
    sent = [key for key in messages if key != "ping"]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Confirma events",
            "version": CATALOGUE_VERSION,
            "description": (
                "What Confirma tells screens as it happens. One WebSocket, `/ws/events/`, "
                "carries every event to the audiences the connection may see, decided by "
                "the server: a logged-in user (session cookie) gets `user:<id>` and "
                "`role:<role>` for each role held (staff get every role); a signed `token=` "
                "adds `payment:<reference>` (a kiosk or a waiting page), `display:<name>` "
                "(a public board) or `machine:<id>` (a machine's controller).\n\n"
                "Each event is a frame `{id, type, payload, at}`; `id` grows. Reconnect with "
                "`?since=<last id>` to get what was missed, in order; de-duplicate by `id`. "
                "Amounts are decimal strings, times ISO 8601 with offset. Payloads may gain "
                "keys in later versions; names never change meaning.\n\n"
                "Staff may also publish announcements of their own (`manage.py notify`), "
                "whose type and payload they choose."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "confirma": {
                "host": "{host}",
                "protocol": "wss",
                "description": "Confirma itself (ws:// on a development machine).",
                "variables": {
                    "host": {
                        "default": "confirma.example.com",
                        "description": "Where Confirma is served.",
                    }
                },
            }
        },
        "channels": {
            "events": {
                "address": "/ws/events/",
                "title": "Events",
                "description": "Query: `since` (the last id the client has: missed events "
                "are replayed first), `token` (the signed token of a kiosk, display or "
                "machine), and, with `since`, `from` (the id the client started listening "
                "at) with `seen` (ids it holds, comma-separated, at most 500) to get events "
                "that committed late between the two.",
                "messages": messages,
                "bindings": {
                    "ws": {
                        "query": {
                            "type": "object",
                            "properties": {
                                "since": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                                "token": {"type": "string"},
                                "from": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                                "seen": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
                            },
                        },
                        "bindingVersion": "0.1.0",
                    }
                },
            }
        },
        "operations": {
            "sendEvents": {
                "action": "send",
                "channel": channel_ref,
                "title": "Events and control frames Confirma sends",
                "messages": [{"$ref": f"#/channels/events/messages/{key}"} for key in sent],
            },
            "receivePing": {
                "action": "receive",
                "channel": channel_ref,
                "title": "A client's ping",
                "messages": [{"$ref": "#/channels/events/messages/ping"}],
            },
        },
    }
