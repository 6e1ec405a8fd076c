"""The orders app's errors, rooted in the project's ConfirmaError."""

from core.errors import ConfirmaError


class OrderError(ConfirmaError):
    code = "order_error"
