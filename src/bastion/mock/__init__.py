"""`bastion mock`: a fake Anthropic API speaking the real wire format, with fault injection."""

from bastion.mock.app import build_mock_app
from bastion.mock.asgi import ASGIApp
from bastion.mock.scenarios import SCENARIOS
from bastion.mock.server import DEFAULT_HOST, DEFAULT_PORT, mock_config, run_mock
from bastion.mock.settings import MockSettings

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "SCENARIOS",
    "ASGIApp",
    "MockSettings",
    "build_mock_app",
    "mock_config",
    "run_mock",
]
