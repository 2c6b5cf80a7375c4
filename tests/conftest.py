"""Shared fixtures: an in-process emulated AWS (moto's mock_aws) with the template's own
bucket and table, and a way to call any function's handler with an event."""

from __future__ import annotations

import functools


import pytest
from moto import mock_aws

from local_stack import resources
from registry import aws, config
from tests import dynamodb_limits
from tests.clients import ADMIN, CallCounter, Client

# Every DynamoDB call of every test is checked against the limits AWS enforces
# and moto does not (item and key sizes, duplicate keys in a batch or transaction).
dynamodb_limits.install()


@pytest.fixture(autouse=True)
def within_dynamodb_limits():
    """Fail the test if any DynamoDB call it caused would have been refused by AWS."""
    dynamodb_limits.take()
    yield
    found = dynamodb_limits.take()
    assert not found, "DynamoDB calls AWS would refuse (tests/dynamodb_limits.py): " + "; ".join(found[:5])


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in resources.function_environment().items():
        monkeypatch.setenv(key, value)
    aws.reset()
    config.settings.cache_clear()
    yield
    aws.reset()
    config.settings.cache_clear()


@functools.cache
def _admin_password_hash() -> str:
    """scrypt once per session (it is deliberately slow), not once per test."""
    from registry import accounts

    return accounts.hash_password(ADMIN[1])


@pytest.fixture
def moto(aws_env, monkeypatch):
    """moto's in-process AWS with the template's bucket, table and signing key, and an admin user."""
    from registry.auth import pseudonym, tokens
    from registry.storage import principals

    with mock_aws():
        resources.create_bucket()
        resources.create_table()
        monkeypatch.setenv("TOKEN_KEY_ID", resources.create_signing_key())
        queue_urls = resources.create_queues()
        monkeypatch.setenv("VERIFY_QUEUE_URL", queue_urls["VerifyQueue"])
        monkeypatch.setenv("SIGNIN_HASH_KEY_ID", resources.create_sign_in_hash_key())
        config.settings.cache_clear()
        tokens.reset()
        pseudonym.reset()
        principals.create_user(ADMIN[0], {"password": _admin_password_hash(), "admin": True, "disabled": False})
        yield
        tokens.reset()


@pytest.fixture
def auth_off(aws_env, monkeypatch):
    """Authentication switched off, for tests about something else (event shapes, HTTP mechanics)."""
    monkeypatch.setenv("AUTH_ENABLED", "false")
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


@pytest.fixture(scope="session")
def gateway():
    from local_stack.gateway import Gateway

    return Gateway()


@pytest.fixture
def client(moto, gateway) -> Client:
    return Client(gateway)


@pytest.fixture
def anonymous(moto, gateway) -> Client:
    return Client(gateway, credentials=None)


@pytest.fixture
def aws_calls(moto):
    """Hook the registry's own clients (created after this) to count their calls."""
    from registry import aws as registry_aws

    counter = CallCounter()
    registry_aws.reset()
    for client in (registry_aws.s3(), registry_aws.dynamodb()):
        client.meta.events.register("before-call", counter)
    return counter


@pytest.fixture
def verifier(moto):
    """The template's SQS-triggered functions (the verify function), run on demand: ``verifier.drain()``."""
    from local_stack.queues import Poller

    return Poller.for_template()


@pytest.fixture
def limits(monkeypatch, aws_env):
    """Pull rate limits small enough to reach: anonymous 3 a minute, signed in 5."""
    monkeypatch.setenv("RATE_LIMIT_ANONYMOUS", "3;w=60")
    monkeypatch.setenv("RATE_LIMIT_AUTHENTICATED", "5;w=60")
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()
