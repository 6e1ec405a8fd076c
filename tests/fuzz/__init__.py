"""Fuzzing and property-based tests (Hypothesis, Schemathesis).

They must not flake in CI: the profile below is derandomised (the same examples on every
run, chosen from the test's own source) and keeps no example database in the work tree.
`HYPOTHESIS_PROFILE=fuzz-explore` draws fresh random examples for a longer local hunt.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = dict(
    database=None,
    deadline=None,
    print_blob=True,
    # Each example of a database test runs in a savepoint of one test transaction: the
    # function-scoped fixtures (users, the transaction itself) are shared on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile("fuzz-ci", derandomize=True, **_COMMON)
settings.register_profile("fuzz-explore", derandomize=False, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fuzz-ci"))
