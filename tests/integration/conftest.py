"""The local stack, started once per test session, and real clients pointed at it.

Clients that are missing make the tests fail (``support.require``), never skip:
CI installs them (.ci/run).
"""

from __future__ import annotations

import pytest

from local_stack.stack import LocalStack
from support import free_port
from support.dockerd import Dockerd


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack():
    """The registry as ``make run`` serves it: moto + the gateway routing from template.yaml."""
    with LocalStack(port=free_port()) as running:
        yield running


@pytest.fixture(scope="session")
def registry(stack) -> str:
    """host:port of the local registry, as clients name it."""
    return stack.address


@pytest.fixture(scope="session")
def dockerd():
    with Dockerd() as daemon:
        yield daemon
