from django_tasks import task

from tickets.services import print_job_run


@task()
def print_job_send(*, job_id: int) -> str:
    """Send a print job to its printer; failures are retried with back-off by the service."""
    return str(print_job_run(job_id=job_id))
