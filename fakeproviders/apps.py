from django.apps import AppConfig


class FakeProvidersConfig(AppConfig):
    """Local fakes of the payment providers, installed only when FAKE_PROVIDERS is on (and in
    the test run). The product never imports this app; it registers itself here."""

    name = "fakeproviders"
    verbose_name = "Fake payment providers"

    def ready(self) -> None:
        from fakeproviders.simulators import SIMULATORS
        from payments.services.simulation import simulator_register

        for provider, simulator in SIMULATORS.items():
            simulator_register(provider, simulator)
