from django.utils.translation import gettext_lazy as _

from core.errors import ConfirmaError, NotFound


class SubscriptionError(ConfirmaError):
    code = "subscription_error"


class StaffOnly(SubscriptionError):
    code = "permission_denied"
    status = 403


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


class MachineReserved(MachineBusy):
    """Another customer is paying for the machine by PIX: it is held for them for a short
    while (MACHINE_RESERVATION_MINUTES), or until that payment is paid, fails or is
    cancelled, whichever comes first."""

    code = "machine_reserved"

    def __init__(self, *, until=None) -> None:
        MachineError.__init__(
            self,
            _("Someone is paying for this machine right now. Try again in a few minutes."),
            until=until.isoformat() if until else None,
        )


class PixPaymentWaiting(MachineError):
    """The customer already has a PIX purchase of machine time waiting to be paid: one at a
    time. They pay it, or cancel it on that machine's page, before starting another."""

    code = "pix_payment_waiting"
    status = 409

    def __init__(self, *, machine) -> None:
        super().__init__(
            _(
                "You are already paying for %(machine)s by PIX. Pay or cancel that payment "
                "before starting another."
            )
            % {"machine": machine.name},
            machine=machine.code,
        )
        self.machine = machine
