"""SQS: the queue that carries a blob's verification on past the request that completed its upload.

A message names an upload session; the verify function (its SQS event source)
advances that session's verification and, when its own time runs short, sends
the message again. Messages carry nothing but the session id: the progress
lives in the session item, so a duplicate or redelivered message is harmless.
"""

from __future__ import annotations

import json

from registry import aws
from registry.config import settings


def request_verification(upload_id: str):
    """Queue one verification step for ``upload_id`` (one SendMessage call)."""
    aws.sqs().send_message(QueueUrl=settings().verify_queue_url, MessageBody=json.dumps({"upload": upload_id}))


def request_fetch(upload_id: str):
    """Queue one step of a pull-through cache's blob fetch (registry.services.fetching)."""
    aws.sqs().send_message(QueueUrl=settings().fetch_queue_url, MessageBody=json.dumps({"upload": upload_id}))


def upload_of(body: str) -> str | None:
    """The session id a queue message names, or None for a message that is not ours."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    upload = document.get("upload") if isinstance(document, dict) else None
    return upload if isinstance(upload, str) else None
