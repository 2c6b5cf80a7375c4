"""The local stack's AWS emulator gives DynamoDB requests the isolation DynamoDB has (local_stack.emulator)."""

from __future__ import annotations

import threading
import time
import uuid

import boto3
import pytest
from moto.dynamodb.models import DynamoDBBackend

from local_stack import emulator



@pytest.fixture
def table() -> str:
    """A fresh table name: moto's server keeps its state in the process's backends, shared by every server."""
    return f"isolation-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def endpoint():
    running = emulator.Emulator().start()
    yield running.endpoint
    running.stop()


def _client(endpoint: str):
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def _slow_transactions(monkeypatch) -> dict:
    """moto's TransactWriteItems made slow (0.3 s), counting how many run at once."""
    seen = {"now": 0, "most": 0}
    lock = threading.Lock()
    original = DynamoDBBackend.transact_write_items

    def slow(self, transact_items):
        with lock:
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            time.sleep(0.3)
            return original(self, transact_items)
        finally:
            with lock:
                seen["now"] -= 1

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", slow)
    return seen


def test_a_cancelled_transaction_never_overlaps_a_committing_one(endpoint, table, monkeypatch):
    # moto backs up the whole table for a transaction and restores it when a condition fails:
    # overlapping, the cancelled one would erase the other's commit (two first pushes of one repository).
    client = _client(endpoint)
    client.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    seen = _slow_transactions(monkeypatch)
    cancelled = []

    def commit():
        _client(endpoint).transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "committed"}}}}])

    def cancel():
        try:
            _client(endpoint).transact_write_items(TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "cancelled"}}}},
                {"ConditionCheck": {"TableName": table, "Key": {"pk": {"S": "absent"}}, "ConditionExpression": "attribute_exists(pk)"}},
            ])
        except client.exceptions.TransactionCanceledException:
            cancelled.append(True)

    threads = [threading.Thread(target=cancel), threading.Thread(target=commit), threading.Thread(target=cancel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen["most"] == 1
    assert cancelled == [True, True]
    assert "Item" in client.get_item(TableName=table, Key={"pk": {"S": "committed"}}, ConsistentRead=True)
    assert "Item" not in client.get_item(TableName=table, Key={"pk": {"S": "cancelled"}}, ConsistentRead=True)


def test_other_services_are_not_held_behind_dynamodb(endpoint, table, monkeypatch):
    client = _client(endpoint)
    client.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    _slow_transactions(monkeypatch)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=table)
    s3.put_object(Bucket=table, Key="k", Body=b"x")  # S3's first request builds moto's backend
    slow = threading.Thread(target=lambda: client.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": {"pk": {"S": "k"}}}}]))
    slow.start()
    time.sleep(0.05)
    started = time.monotonic()
    s3.put_object(Bucket=table, Key="k", Body=b"x")
    s3_seconds = time.monotonic() - started
    slow.join()
    assert s3_seconds < 0.25, s3_seconds  # not queued behind the 0.3 s transaction
