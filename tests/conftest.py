"""Shared fixtures: an in-process emulated AWS (moto's mock_aws) with the template's own
bucket and table, and a way to call any function's handler with an event."""

from __future__ import annotations

import os

import pytest
from moto import mock_aws

from local_stack import resources
from registry import aws, config


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


@pytest.fixture
def moto(aws_env):
    """moto's in-process AWS with the bucket and table created from template.yaml."""
    with mock_aws():
        resources.create_bucket()
        resources.create_table()
        yield
