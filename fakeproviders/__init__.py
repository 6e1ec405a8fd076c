"""Local fakes of the providers, for tests and the demo (FAKE_PROVIDERS=true).

They speak the providers' real protocols on loopback and sign their notifications the
real way, so the code under test is exactly the production code. Production never
routes to them: this app is installed only when FAKE_PROVIDERS is on (and in the test
run), and no product module imports it (an import-linter contract says so); it plugs
its simulators into `payments` from `FakeProvidersConfig.ready()`.
"""
