"""The root of every domain error Confirma raises.

Services raise subclasses; the API exception handler, pages and the WebSocket consumer
translate them for the outside world. `code` is stable and machine-readable; `message`
is for people and already translated.
"""


class ConfirmaError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str = "", *, code: str | None = None, **details) -> None:
        super().__init__(message)
        self.message = str(message)
        if code:
            self.code = code
        self.details = details


class NotFound(ConfirmaError):
    code = "not_found"
    status = 404


class PermissionDenied(ConfirmaError):
    code = "permission_denied"
    status = 403


class Conflict(ConfirmaError):
    code = "conflict"
    status = 409
