"""The mock's own fixture, as the pytest plugin provides it (the plugin's entry point is
not installed in the development venv; importing the fixture here makes it available)."""

from wireclient.mock.pytest_plugin import mock_server  # noqa: F401
