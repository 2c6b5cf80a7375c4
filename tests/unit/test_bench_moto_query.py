"""The bench's one-partition Query (scripts/bench/moto_query.py) answers as moto's own.

The same queries run against stock moto and against the shortcut, on a table
keyed like the registry's (string hash and range keys), one with number keys
and one with a hash key only: every page of every answer must be the same.
"""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from scripts.bench import moto_query

STRINGS, NUMBERS, SINGLE = "strings", "numbers", "single"


def _create_tables(client):
    for name, kind, with_range in ((STRINGS, "S", True), (NUMBERS, "N", True), (SINGLE, "S", False)):
        keys = [("pk", "HASH")] + ([("sk", "RANGE")] if with_range else [])
        client.create_table(
            TableName=name,
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": kind} for a, _ in keys],
            KeySchema=[{"AttributeName": a, "KeyType": k} for a, k in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    for p in range(4):
        for s in range(12):
            client.put_item(TableName=STRINGS, Item={"pk": {"S": f"p{p}"}, "sk": {"S": f"s#{s:02d}"}, "n": {"N": str(s % 3)}})
            client.put_item(TableName=NUMBERS, Item={"pk": {"N": str(p)}, "sk": {"N": str(s * 1.5)}, "v": {"S": "x" * s}})
        client.put_item(TableName=SINGLE, Item={"pk": {"S": f"p{p}"}, "v": {"N": str(p)}})
    client.get_item(TableName=STRINGS, Key={"pk": {"S": "absent"}, "sk": {"S": "a"}})  # moto grows an empty partition


def _v(kind, value):
    return {kind: value}


QUERIES = [
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": _v("S", "p1")}},
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": _v("S", "absent")}},
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": _v("S", "never")}},
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
     "ExpressionAttributeValues": {":p": _v("S", "p2"), ":s": _v("S", "s#0")}, "ScanIndexForward": False},
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
     "ExpressionAttributeValues": {":p": _v("S", "p0"), ":a": _v("S", "s#03"), ":b": _v("S", "s#08")}, "Limit": 2},
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p AND sk > :a", "FilterExpression": "n = :z",
     "ExpressionAttributeValues": {":p": _v("S", "p3"), ":a": _v("S", "s#02"), ":z": _v("N", "0")}, "Limit": 3},
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p", "ProjectionExpression": "sk",
     "ExpressionAttributeValues": {":p": _v("S", "p1")}, "Limit": 5, "ScanIndexForward": False},
    {"TableName": STRINGS, "KeyConditionExpression": "pk = :p", "Select": "COUNT", "ExpressionAttributeValues": {":p": _v("S", "p1")}},
    {"TableName": NUMBERS, "KeyConditionExpression": "pk = :p AND sk < :s",
     "ExpressionAttributeValues": {":p": _v("N", "2.0"), ":s": _v("N", "9")}, "Limit": 4},
    {"TableName": SINGLE, "KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": _v("S", "p2")}},
]


def _pages(client, query) -> list[dict]:
    """Every page of the query, following LastEvaluatedKey."""
    pages, start = [], None
    while True:
        response = client.query(**query, **({"ExclusiveStartKey": start} if start else {}))
        pages.append({k: v for k, v in response.items() if k != "ResponseMetadata"})
        start = response.get("LastEvaluatedKey")
        if not start:
            return pages


def _run_all() -> list[list[dict]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t")
        _create_tables(client)
        return [_pages(client, query) for query in QUERIES]


@pytest.fixture
def stock_then_shortcut():
    moto_query.uninstall()
    stock = _run_all()
    moto_query.install()
    try:
        shortcut = _run_all()
    finally:
        moto_query.uninstall()
    return stock, shortcut


def test_queries_answer_the_same_pages_with_the_shortcut_as_with_moto(stock_then_shortcut):
    stock, shortcut = stock_then_shortcut
    for number, (expected, got) in enumerate(zip(stock, shortcut)):
        assert got == expected, f"query {number}"


def test_the_queries_return_items_and_pages(stock_then_shortcut):
    """The comparison means something: most queries find items, some take several pages."""
    stock, _ = stock_then_shortcut
    assert sum(1 for pages in stock if any(page.get("Items") for page in pages)) >= 7
    assert sum(1 for pages in stock if len(pages) > 1) >= 3
