"""The bench's journaled TransactWriteItems rollback (scripts/bench/moto_journal.py) behaves as moto's own.

The same transactions run against stock moto and against the journal: after
each, the response (or the error code and CancellationReasons) and every item
of both tables must be the same. The sequence has transactions that succeed,
ones cancelled by a condition after earlier operations of them had put,
updated (including creating an item) and deleted items, one refused for
naming a key twice after its first operation had applied, and one with two
operations in one element (which moto refuses without rolling back).
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws

from scripts.bench import moto_journal
from tests import dynamodb_limits

PAIRS = "pairs"  # hash and range key, as the registry's table
SINGLE = "single"  # hash key only


def _put(table, item, **extra):
    return {"Put": {"TableName": table, "Item": item, **extra}}


def _update(table, key, expression, values, **extra):
    return {"Update": {"TableName": table, "Key": key, "UpdateExpression": expression, "ExpressionAttributeValues": values, **extra}}


def _delete(table, key, **extra):
    return {"Delete": {"TableName": table, "Key": key, **extra}}


def _check(table, key, condition, **extra):
    return {"ConditionCheck": {"TableName": table, "Key": key, "ConditionExpression": condition, **extra}}


def _key(pk, sk):
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _id(value):
    return {"id": {"S": value}}


N1 = {":n": {"N": "1"}}

TRANSACTIONS = [
    # succeeds: creates, overwrites, updates and deletes
    [
        _put(PAIRS, {**_key("a", "1"), "v": {"S": "new"}}),
        _put(PAIRS, {**_key("a", "2"), "v": {"S": "replaced"}}),
        _update(PAIRS, _key("b", "1"), "ADD n :n", N1),
        _delete(PAIRS, _key("b", "2")),
        _put(SINGLE, {**_id("x"), "v": {"S": "x2"}}),
    ],
    # cancelled by its last operation: every earlier write is undone
    [
        _put(PAIRS, {**_key("c", "1"), "v": {"S": "would be new"}}),
        _put(PAIRS, {**_key("a", "1"), "v": {"S": "would replace"}}),
        _update(PAIRS, _key("b", "1"), "ADD n :n", N1),
        _update(PAIRS, _key("d", "9"), "SET v = :n", N1),  # would create an item
        _delete(PAIRS, _key("a", "2")),
        _delete(SINGLE, _id("x")),
        _put(SINGLE, {**_id("y"), "v": {"S": "would be new"}}),
        _check(PAIRS, _key("b", "3"), "attribute_not_exists(pk)"),
    ],
    # cancelled by a condition in the middle, with the old item returned; later operations still run in moto
    [
        _delete(PAIRS, _key("b", "3")),
        _update(PAIRS, _key("b", "1"), "ADD n :n", N1, ConditionExpression="n = :zero",
                ExpressionAttributeValues={**N1, ":zero": {"N": "0"}}, ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        _put(PAIRS, {**_key("e", "1"), "v": {"S": "after the failure"}}),
    ],
    # refused (ValidationException) for naming a key twice, after its first write applied
    [
        _put(PAIRS, {**_key("f", "1"), "v": {"S": "first"}}),
        _delete(PAIRS, _key("a", "2")),
        _update(PAIRS, _key("f", "1"), "SET w = :n", N1),
    ],
    # two operations in one element: moto raises without rolling back the earlier write
    [
        _put(PAIRS, {**_key("g", "1"), "v": {"S": "stays in moto"}}),
        {**_delete(PAIRS, _key("a", "1")), **_check(PAIRS, _key("a", "2"), "attribute_exists(pk)")},
    ],
    # a missing table cancels the transaction
    [
        _delete(PAIRS, _key("b", "3")),
        _put("missing", {**_id("z")}),
    ],
    # succeeds after the failures
    [
        _delete(PAIRS, _key("a", "1")),
        _update(SINGLE, _id("y"), "SET v = :n", N1),
        _check(PAIRS, _key("b", "3"), "attribute_exists(pk)"),
    ],
]


def _create_tables(client):
    client.create_table(
        TableName=PAIRS,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.create_table(
        TableName=SINGLE,
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for pk, sk in (("a", "2"), ("b", "1"), ("b", "2"), ("b", "3")):
        client.put_item(TableName=PAIRS, Item={**_key(pk, sk), "v": {"S": f"{pk}{sk}"}, "n": {"N": "0"}})
    client.put_item(TableName=SINGLE, Item={**_id("x"), "v": {"S": "x1"}})


def _contents(client) -> dict:
    """Every item of both tables, in key order, and the table's item count."""
    out = {}
    for table in (PAIRS, SINGLE):
        items = client.scan(TableName=table)["Items"]
        out[table] = {
            "items": sorted(json.dumps(item, sort_keys=True) for item in items),
            "count": client.describe_table(TableName=table)["Table"]["ItemCount"],
        }
    return out


def _outcome(client, transaction) -> dict:
    try:
        response = client.transact_write_items(TransactItems=transaction)
    except ClientError as e:
        return {"error": e.response["Error"]["Code"], "reasons": e.response.get("CancellationReasons")}
    return {"response": {k: v for k, v in response.items() if k != "ResponseMetadata"}}


def _run_all() -> list[dict]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        _create_tables(client)
        steps = [{"state": _contents(client)}]
        for transaction in TRANSACTIONS:
            steps.append({"outcome": _outcome(client, transaction), "state": _contents(client)})
        return steps


@pytest.fixture
def stock_then_journaled(monkeypatch):
    # Straight to moto: tests/dynamodb_limits.py would refuse the duplicate key before moto saw it.
    monkeypatch.setattr(BaseClient, "_make_api_call", dynamodb_limits._original)
    moto_journal.uninstall()
    stock = _run_all()
    moto_journal.install()
    try:
        journaled = _run_all()
    finally:
        moto_journal.uninstall()
    return stock, journaled


def test_transactions_leave_the_same_items_and_errors_with_the_journal_as_with_moto(stock_then_journaled):
    stock, journaled = stock_then_journaled
    for number, (expected, got) in enumerate(zip(stock, journaled)):
        assert got == expected, f"after transaction {number}"


def test_the_sequence_exercises_rollbacks(stock_then_journaled):
    """The comparison means something: moto cancels or refuses the transactions meant to fail, and undoes their writes."""
    stock, _ = stock_then_journaled
    codes = [step["outcome"].get("error") for step in stock[1:]]
    assert codes == [None, "TransactionCanceledException", "TransactionCanceledException", "ValidationException",
                     "ValidationException", "ResourceNotFoundException", None]
    for rolled_back in (2, 3, 4, 6):
        assert stock[rolled_back]["state"] == stock[rolled_back - 1]["state"], f"transaction {rolled_back - 1}"
    assert stock[5]["state"] != stock[4]["state"]  # the two-operation element: moto keeps the earlier write
    reasons = stock[3]["outcome"]["reasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed", "None"]
    assert "Item" in reasons[1]
