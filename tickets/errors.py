"""The tickets app's errors, rooted in the project's ConfirmaError."""

from core.errors import ConfirmaError


class TicketError(ConfirmaError):
    code = "ticket_error"
