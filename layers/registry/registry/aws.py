"""boto3 clients, created once per container on first use.

Created lazily (not at import) so tests can start moto first; cached so a warm
Lambda container reuses its connections.
"""

from __future__ import annotations

import os
from functools import cache

import boto3
from botocore.config import Config


@cache
def s3():
    # Path-style only where an emulator endpoint is set (an IP host cannot
    # carry a bucket sub-domain); AWS itself gets virtual-hosted URLs.
    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "virtual"
    return boto3.client("s3", config=Config(signature_version="s3v4", s3={"addressing_style": style}))


@cache
def dynamodb():
    return boto3.client("dynamodb")


@cache
def kms():
    return boto3.client("kms")


@cache
def secretsmanager():
    return boto3.client("secretsmanager")


@cache
def sqs():
    return boto3.client("sqs")


def reset():
    """Forget cached clients (tests switch endpoints between cases)."""
    sqs.cache_clear()
    s3.cache_clear()
    dynamodb.cache_clear()
    kms.cache_clear()
    secretsmanager.cache_clear()
