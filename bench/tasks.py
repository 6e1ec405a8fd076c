"""The baseline print task (run by the serving layout's db_worker)."""

from django_tasks import task

from tickets.printing import printer_send


@task()
def bench_print(*, url: str, data_hex: str) -> str:
    printer_send(url, bytes.fromhex(data_hex))
    return "printed"
