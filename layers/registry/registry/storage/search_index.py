"""DynamoDB: the search index (name n-grams, description words) and stars.

Search never scans: a repository name is indexed under each of its 1 to 3
character substrings (``GRAM#<gram>``), a description under each of its
words (``WORD#<word>``). A query reads only the partitions of its own grams
or word, so its cost grows with the repositories that share them, not with
the size of the registry.
"""

from __future__ import annotations

import re
import time

from botocore.exceptions import ClientError

from registry import aws, keys
from registry.storage import dynamo

GRAM_MAX = 3
_WORD = re.compile(r"[a-z0-9]+")


def grams(text: str, sizes=range(1, GRAM_MAX + 1)) -> set[str]:
    text = text.lower()
    return {text[i : i + n] for n in sizes for i in range(len(text) - n + 1)}


def words(text: str) -> set[str]:
    return set(_WORD.findall((text or "").lower()))


def add_repository(name: str):
    dynamo.batch_put([keys.gram_key(gram, name) for gram in sorted(grams(name))])


def names_with_gram(gram: str, limit: int) -> set[str]:
    """The first ``limit`` names (in name order) indexed under ``gram``."""
    return _partition(f"GRAM#{gram}", limit)


def names_with_word(word: str, limit: int) -> set[str]:
    """The first ``limit`` names (in name order) whose description has ``word``."""
    return _partition(f"WORD#{word}", limit)


def _partition(pk: str, limit: int) -> set[str]:
    # One Query of limit + 1 small items (a name and its key: far under the 1 MB a Query returns).
    items, _ = dynamo.query_page(pk, "", limit, None)
    return {item["sk"] for item in items}


def set_description(name: str, description: str, previous: str):
    """Store the description on the catalog item and move its words in the index."""
    aws.dynamodb().update_item(
        TableName=dynamo.table(),
        Key=dynamo.encode(keys.catalog_key(name)),
        UpdateExpression="SET description = :description, updated = :now",
        ExpressionAttributeValues=dynamo.encode({":description": description, ":now": int(time.time())}),
    )
    old, new = words(previous), words(description)
    dynamo.batch_delete([keys.word_key(word, name) for word in sorted(old - new)])
    dynamo.batch_put([keys.word_key(word, name) for word in sorted(new - old)])


def set_official(name: str, official: bool):
    aws.dynamodb().update_item(
        TableName=dynamo.table(),
        Key=dynamo.encode(keys.catalog_key(name)),
        UpdateExpression="SET official = :official",
        ExpressionAttributeValues=dynamo.encode({":official": official}),
    )


def star(name: str, user: str, starred: bool) -> bool:
    """Star (or unstar) once per user; False when it already was (or was not)."""
    if starred:
        star_write = {"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(keys.star_key(name, user)), "ConditionExpression": "attribute_not_exists(pk)"}}
        delta = 1
    else:
        star_write = {"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.star_key(name, user)), "ConditionExpression": "attribute_exists(pk)"}}
        delta = -1
    count = {
        "Update": {
            "TableName": dynamo.table(),
            "Key": dynamo.encode(keys.catalog_key(name)),
            "UpdateExpression": "ADD stars :delta",
            "ExpressionAttributeValues": dynamo.encode({":delta": delta}),
        }
    }
    try:
        dynamo.transact([star_write, count])
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or []
        if any(reason.get("Code") == "ConditionalCheckFailed" for reason in reasons):
            return False
        raise
    return True


def starred_by(name: str, user: str) -> bool:
    return dynamo.get(keys.star_key(name, user)) is not None
