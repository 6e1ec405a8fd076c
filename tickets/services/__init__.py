"""Tickets: made from paid kiosk sessions, printed by a task, called by operators.

The `ticket` purpose turns a paid session into a PAID ticket inside the confirmation's
transaction (one ticket per session: a database constraint). Its number comes from the
service's counter for the local day, locked for the increment, so concurrent payments
get 1, 2, 3… without gaps or duplicates. Printing happens in a task, on commit.

Printing is at least once, and a duplicate is never silent. The ticket is the customer's
proof of payment, so it is never dropped; but ESC/POS over raw TCP has no job id a printer
remembers, so a job whose bytes may have reached the printer without the result being
recorded (a worker killed while sending, a printer that took the bytes and never
answered) may already be on paper. Such a job is "half-sent", and:

- before the first byte goes out, the attempt is committed on the job row (`sending`,
  attempt number, the time it began), so a half-sent job can always be recognised;
- the next attempt is sent with a REPRINT banner above the ticket (`reprint_marked`; in
  the language the customer used at the kiosk), so the customer and the operator can tell
  the second slip from a second ticket; a job's unmarked copy comes out at most once
  (a reprint staff or an operator ask for is a new job, printed as it is);
- the ticket's audit trail gets a `print_interrupted` event (which attempt, when it
  began, why it is in doubt) and the operators a `ticket.print_interrupted` event; their
  panel marks the ticket "REPRINT" for as long as it waits or is at a desk;
- after the last attempt nothing changes: the ticket goes to PRINT_ERROR and staff are
  alerted, whether or not the attempt may have printed.

A job found `sending` by `print_jobs_recover` (the periodic sweep) or by a task run again
for it, once the attempt has outlived its lease, is such a half-sent job.

The modules here, by concern: `kiosk` (kiosk tokens), `transitions` (locking a ticket,
moving it, telling who waits), `purpose` (the paid session becomes a ticket), `print_jobs`,
`print_send` and `print_recovery` (printing), `desks` and `queue` (operators).
"""

from tickets.errors import TicketError
from tickets.services.desks import (
    desk_call_next,
    operator_desk,
    operator_desk_set,
    ticket_reprint_request,
)
from tickets.services.kiosk import kiosk_for_token, kiosk_token_rotate
from tickets.services.print_jobs import print_jobs_create
from tickets.services.print_recovery import PrintRecovery, print_jobs_recover, print_lease_seconds
from tickets.services.print_send import print_job_run
from tickets.services.purpose import TicketPurpose
from tickets.services.queue import (
    ticket_call_next,
    ticket_cancel,
    ticket_complete,
    ticket_no_show,
    ticket_recall,
    ticket_start,
)
from tickets.services.transitions import ticket_payload

__all__ = [
    "PrintRecovery",
    "TicketError",
    "TicketPurpose",
    "desk_call_next",
    "kiosk_for_token",
    "kiosk_token_rotate",
    "operator_desk",
    "operator_desk_set",
    "print_job_run",
    "print_jobs_create",
    "print_jobs_recover",
    "print_lease_seconds",
    "ticket_call_next",
    "ticket_cancel",
    "ticket_complete",
    "ticket_no_show",
    "ticket_payload",
    "ticket_recall",
    "ticket_reprint_request",
    "ticket_start",
]
