from tests.payments.conftest import *  # noqa: F403 - the provider fakes and helpers
