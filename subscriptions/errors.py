from django.utils.translation import gettext_lazy as _

from config.errors import ConfirmaError, NotFound


class MachineError(ConfirmaError):
    code = "machine_error"


class MachineNotFound(NotFound):
    code = "machine_not_found"

    def __init__(self) -> None:
        super().__init__(_("There is no such machine."))


class MachineBusy(MachineError):
    code = "machine_busy"
    status = 409

    def __init__(self) -> None:
        super().__init__(_("This machine is in use right now. Try again when it is free."))
