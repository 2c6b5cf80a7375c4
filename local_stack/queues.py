"""A local stand-in for Lambda's SQS event source mappings, read from ``template.yaml``.

For every function with an ``SQS`` event, a thread long-polls the queue (moto's
SQS), calls the function's ``lambda_handler`` with the records as Lambda
would (``Records[].body``, ``messageId``, ``receiptHandle``, ``eventSource``
``aws:sqs``), with a context whose remaining time is the function's own
``Timeout``, and deletes the messages the function did not report as failed
(``ReportBatchItemFailures``); a failed message comes back after the queue's
visibility timeout, as on AWS.
"""

from __future__ import annotations

import logging
import threading
import uuid

import boto3

from local_stack import template
from local_stack.gateway import LambdaContext, load_handler

log = logging.getLogger("local_stack.queues")
RETRY_SECONDS = 1.0  # pause after a failed poll


def mappings(t: dict | None = None) -> list[dict]:
    """[{function, code_uri, queue (logical id), batch_size, timeout}] for every SQS event in the template."""
    t = t or template.load()
    default_timeout = t.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    found = []
    for logical_id, resource in t["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "SQS":
                continue
            queue = event["Properties"]["Queue"]["Fn::GetAtt"].split(".")[0]
            found.append(
                {
                    "function": logical_id,
                    "code_uri": props["CodeUri"],
                    "queue": queue,
                    "batch_size": int(event["Properties"].get("BatchSize", 10)),
                    "timeout": float(props.get("Timeout", default_timeout)),
                }
            )
    return found


class Poller:
    """One thread per SQS event source; ``stop()`` ends them within a poll (about a second)."""

    def __init__(self, queue_urls: dict[str, str]):
        self.queue_urls = queue_urls
        self._stop = threading.Event()
        self._threads = []

    @classmethod
    def for_template(cls) -> "Poller":
        """A poller for the queues ``resources.create_queues`` made (found by name)."""
        client = boto3.client("sqs")
        names = {m["queue"] for m in mappings()}
        return cls({q: client.get_queue_url(QueueName=f"registry-{q}")["QueueUrl"] for q in names})

    def start(self) -> "Poller":
        for mapping in mappings():
            handler = load_handler(mapping["code_uri"])
            thread = threading.Thread(target=self._run, args=(mapping, handler), name=f"sqs-{mapping['function']}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, mapping: dict, handler):
        client = boto3.client("sqs")
        while not self._stop.is_set():
            try:
                self.poll_once(mapping, handler, client, wait=1)
            except Exception:  # noqa: BLE001 - as Lambda's event source mapping, keep polling
                if self._stop.is_set():
                    return  # moto stopping under us at shutdown
                # A failed ReceiveMessage (the queue deleted, moto reset, a network error) must not end the
                # thread: every later message would wait forever. Log it and try again after a pause.
                log.warning("%s: polling its queue failed; retrying in %s s", mapping["function"], RETRY_SECONDS, exc_info=True)
                self._stop.wait(RETRY_SECONDS)

    def poll_once(self, mapping: dict, handler, client, wait: int = 0) -> int:
        """Receive one batch and hand it to the function; returns how many messages came."""
        url = self.queue_urls[mapping["queue"]]
        messages = client.receive_message(QueueUrl=url, MaxNumberOfMessages=mapping["batch_size"], WaitTimeSeconds=wait).get("Messages", [])
        if not messages:
            return 0
        event = {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": {},
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{url.rsplit('/', 1)[-1]}",
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }
        context = LambdaContext(mapping["function"], str(uuid.uuid4()), timeout=mapping["timeout"])
        try:
            result = handler(event, context) or {}
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
        except Exception:  # noqa: BLE001 - Lambda retries the whole batch after the visibility timeout
            log.exception("%s failed on a queue batch", mapping["function"])
            return len(messages)
        for m in messages:
            if m["MessageId"] not in failed:
                client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return len(messages)

    def drain(self, handlers: dict | None = None) -> int:
        """Without threads (unit tests): deliver every queued message until the queues are empty; how many."""
        client, delivered = boto3.client("sqs"), 0
        for mapping in mappings():
            handler = (handlers or {}).get(mapping["function"]) or load_handler(mapping["code_uri"])
            while count := self.poll_once(mapping, handler, client):
                delivered += count
        return delivered

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
