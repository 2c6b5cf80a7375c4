"""The local stack's SQS event sources keep delivering after an error, as Lambda's event source mappings do."""

from __future__ import annotations

import threading
import time

import boto3

from local_stack import queues


def test_a_poller_keeps_polling_after_its_queue_failed_and_delivers_what_comes_later(moto, monkeypatch):
    monkeypatch.setattr(queues, "RETRY_SECONDS", 0.1)
    client = boto3.client("sqs")
    url = client.create_queue(QueueName="registry-poller-test")["QueueUrl"]
    client.delete_queue(QueueUrl=url)  # ReceiveMessage now fails: QueueDoesNotExist
    delivered = threading.Event()
    mapping = {"function": "TestFunction", "queue": "PollerTest", "batch_size": 1, "timeout": 3.0}
    poller = queues.Poller({"PollerTest": url})
    thread = threading.Thread(target=poller._run, args=(mapping, lambda event, context: delivered.set()), daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # a few failed polls
        assert thread.is_alive()
        client.create_queue(QueueName="registry-poller-test")
        client.send_message(QueueUrl=url, MessageBody="work")
        assert delivered.wait(10)
    finally:
        poller.stop()
        thread.join(5)
    assert not thread.is_alive()
