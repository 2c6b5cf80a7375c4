"""The local stack, started once per test session, and real clients pointed at it.

Token authentication is on, as it is by default: the stack starts with a known
admin (``admin_creds``), and further users are made in-process through
``registry.accounts`` (same process, same emulated AWS as the stack).
Repositories are private unless a test makes them public.

Clients that are missing make the tests fail (``support.require``), never skip:
CI installs them (.ci/run).
"""

from __future__ import annotations

import secrets
import urllib.parse
from dataclasses import dataclass
from typing import NamedTuple

import pytest

from local_stack.stack import LocalStack
from support import free_port
from support.dockerd import Dockerd

ADMIN_USER = "admin"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


class User(NamedTuple):
    """A registry user; usable wherever the harness takes creds (``(user, password)``)."""

    name: str
    password: str

    @property
    def creds(self) -> str:
        return f"{self.name}:{self.password}"


_SESSION_STACKS: list[LocalStack] = []


@pytest.fixture(scope="session")
def stack():
    """The registry as ``make run`` serves it: moto + the gateway routing from template.yaml."""
    env = {"REGISTRY_ADMIN_USER": ADMIN_USER, "REGISTRY_ADMIN_PASSWORD": secrets.token_urlsafe(18)}
    with LocalStack(port=free_port(), env=env) as running:
        _SESSION_STACKS.append(running)
        yield running


def pytest_runtest_teardown(item, nextitem):
    """Leaving the integration tests, stop the session stack's SQS pollers (the stack itself stays up).

    moto's backends are process-wide: the unit tests that follow make queues of the same names in
    their in-process ``mock_aws``, and a poller still running would receive their messages.
    """
    if nextitem is not None and "tests/integration" not in nextitem.path.as_posix():
        for running in _SESSION_STACKS:
            if running.poller is not None:
                running.poller.stop()
                running.poller = None


@pytest.fixture(scope="session")
def registry(stack) -> str:
    """host:port of the local registry, as clients name it."""
    return stack.address


@pytest.fixture(scope="session")
def admin_creds(stack) -> User:
    """(user, password) of the admin the stack was started with: may do anything anywhere."""
    user, password, generated = stack.admin
    assert (user, generated) == (ADMIN_USER, False), stack.admin
    return User(user, password)


@pytest.fixture(scope="session")
def accounts(stack):
    """``registry.accounts``, working on the running stack's tables."""
    from registry import accounts as module

    return module


@pytest.fixture(scope="session")
def make_user(accounts):
    """``make_user("carol")`` -> a new normal user with a random password (once per session)."""
    made: dict[str, User] = {}

    def make(name: str) -> User:
        if name not in made:
            password = secrets.token_urlsafe(15)
            accounts.create_user(name, password)
            made[name] = User(name, password)
        return made[name]

    return make


@pytest.fixture(scope="session")
def alice(make_user) -> User:
    """A normal user: owns ``alice/...``, nothing else unless granted."""
    return make_user("alice")


@pytest.fixture(scope="session")
def bob(make_user) -> User:
    """Another normal user: owns ``bob/...``."""
    return make_user("bob")


@pytest.fixture(scope="session")
def dockerd():
    with Dockerd() as daemon:
        yield daemon


@pytest.fixture
def docker_as(dockerd, registry):
    """``docker_as(creds)``: ``docker login`` to the registry (logged out again after the test)."""

    def login(creds):
        return dockerd.login(registry, creds[0], creds[1])

    yield login
    dockerd.docker("logout", registry, check=False)


@dataclass
class Call:
    method: str
    path: str
    query: dict
    status: int
    authorization: str  # the scheme only ("Basic", "Bearer") or ""
    headers: dict  # request headers, lower-case names (authorization removed)
    form: dict  # a form-encoded request body (POST /token), parsed
    body: bytes  # the response body
    reply_headers: dict  # response headers, lower-case names


@pytest.fixture
def requests(stack, monkeypatch) -> list[Call]:
    """Every request the registry answers during the test, with the scheme of its credentials."""
    calls: list[Call] = []
    original = stack.gateway.invoke

    def recording(method, raw_path, raw_query, header_pairs, request_body, *args, **kwargs):
        status, headers, body = original(method, raw_path, raw_query, header_pairs, request_body, *args, **kwargs)
        sent = {}
        for name, value in header_pairs:
            sent.setdefault(name.lower(), []).append(value)
        authorization = ",".join(sent.pop("authorization", [])).partition(" ")[0]
        form = {}
        if "application/x-www-form-urlencoded" in ",".join(sent.get("content-type", [])):
            form = dict(urllib.parse.parse_qsl(bytes(request_body or b"").decode(errors="replace")))
        calls.append(Call(method, raw_path, dict(urllib.parse.parse_qsl(raw_query)), status, authorization,
                          {k: ",".join(v) for k, v in sent.items()}, form, body, {k.lower(): v for k, v in headers}))
        return status, headers, body

    monkeypatch.setattr(stack.gateway, "invoke", recording)
    return calls


@pytest.fixture(scope="session")
def proxy(stack):
    """``registry-proxy`` in front of the local stack, in its own process (``support.proxy.RegistryProxy``)."""
    from support.proxy import RegistryProxy

    with RegistryProxy(stack.url) as running:
        yield running
