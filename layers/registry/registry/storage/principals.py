"""DynamoDB: users, access tokens, refresh tokens, sign-in throttles, repository access.

Only hashes of secrets are stored here (see ``registry.accounts``). Functions
return plain dicts or ``None`` when absent; conditional writes that lose raise
``metadata.Conflict``.
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from registry import aws, keys
from registry.storage import catalog_index, dynamo
from registry.storage.dynamo import Conflict


# --- users ---------------------------------------------------------------------------


def get_user(user: str) -> dict | None:
    return dynamo.get(keys.user_key(user))


def create_user(user: str, attributes: dict):
    dynamo.put(keys.user_key(user), {**attributes, "created": int(time.time())}, "attribute_not_exists(pk)")


def update_user(user: str, **changes):
    """Set attributes of an existing user; raises Conflict when there is no such user."""
    names = {f"#{k}": k for k in changes}
    values = {f":{k}": v for k, v in changes.items()}
    try:
        aws.dynamodb().update_item(
            TableName=dynamo.table(),
            Key=dynamo.encode(keys.user_key(user)),
            UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in changes),
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=dynamo.encode(values),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise Conflict() from None
        raise


def set_user_pull_limit(user: str, limit: str | None):
    expression = "SET pull_limit = :limit" if limit is not None else "REMOVE pull_limit"
    args = {"TableName": dynamo.table(), "Key": dynamo.encode(keys.user_key(user)), "UpdateExpression": expression}
    if limit is not None:
        args["ExpressionAttributeValues"] = dynamo.encode({":limit": limit})
    aws.dynamodb().update_item(**args)


def delete_user_item(user: str):
    """Delete the user's own item: sign-ins and new grants to the user fail from now on."""
    dynamo.delete(keys.user_key(user))


def delete_user(user: str) -> bool:
    """Delete the user and everything under it (access and refresh tokens, grant records)."""
    found = False
    while True:
        items, more = dynamo.query_page(keys.user_pk(user), "", 1000, None)
        found = found or any(item["sk"] == "USER" for item in items)
        dynamo.batch_delete([{"pk": item["pk"], "sk": item["sk"]} for item in items])
        if not more:
            return found


def list_users() -> list[dict]:
    """Every user (an admin operation: a scan, not on any request path)."""
    items, args = [], {"TableName": dynamo.table(), "FilterExpression": "sk = :sk", "ExpressionAttributeValues": dynamo.encode({":sk": "USER"})}
    while True:
        response = aws.dynamodb().scan(**args)
        items += [dynamo.decode(item) for item in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            return items
        args["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# --- access and refresh tokens -------------------------------------------------------


def put_access_token(user: str, token_id: str, attributes: dict):
    dynamo.put(keys.access_token_key(user, token_id), attributes, "attribute_not_exists(pk)")


def get_access_token(user: str, token_id: str) -> dict | None:
    return dynamo.get(keys.access_token_key(user, token_id))


def revoke_access_token(user: str, token_id: str) -> bool:
    try:
        aws.dynamodb().update_item(
            TableName=dynamo.table(),
            Key=dynamo.encode(keys.access_token_key(user, token_id)),
            UpdateExpression="SET revoked = :yes",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues=dynamo.encode({":yes": True}),
        )
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def list_access_tokens(user: str) -> list[dict]:
    items, _ = dynamo.query_page(keys.user_pk(user), keys.TOKEN_PREFIX, 1000, None)
    return items


def put_refresh_token(user: str, token_id: str, attributes: dict):
    dynamo.put(keys.refresh_token_key(user, token_id), attributes, "attribute_not_exists(pk)")


def get_refresh_token(user: str, token_id: str) -> dict | None:
    return dynamo.get(keys.refresh_token_key(user, token_id))


# --- sign-in throttles ----------------------------------------------------------------


def sign_in_state(
    throttles: list[tuple[str, str]], user: str | None = None, access_token: str | None = None, refresh_token: str | None = None
) -> dict:
    """Everything a sign-in decides on, in one BatchGetItem (at most 6 keys).

    ``throttles``: (kind, pseudonym) pairs; ``user``, ``access_token``,
    ``refresh_token``: the user and their token ids to read (None: not read).
    Returns ``{"user", "access_token", "refresh_token"}`` (items or None) and
    ``"windows"``: one (failures, seconds left) per throttle, (0, 0) where no
    window is open (TTL deletes late, so expiry is checked here).
    """
    wanted = {"throttle#" + str(i): keys.throttle_key(kind, key) for i, (kind, key) in enumerate(throttles)}
    if user is not None:
        wanted["user"] = keys.user_key(user)
        if access_token is not None:
            wanted["access_token"] = keys.access_token_key(user, access_token)
        if refresh_token is not None:
            wanted["refresh_token"] = keys.refresh_token_key(user, refresh_token)
    found = dict(zip(wanted, dynamo.get_many(list(wanted.values()))))
    now = int(time.time())
    windows = []
    for i in range(len(throttles)):
        item = found[f"throttle#{i}"]
        live = item is not None and int(item.get("expires_at", 0)) > now
        windows.append((int(item["failures"]), int(item["expires_at"]) - now) if live else (0, 0))
    return {
        "user": found.get("user"),
        "access_token": found.get("access_token"),
        "refresh_token": found.get("refresh_token"),
        "windows": windows,
    }


def count_failure(kind: str, key: str, window_seconds: int):
    """Add one failure to throttle (kind, pseudonym ``key``); the window starts with the first
    failure and expires by TTL. One UpdateItem, or two when a window starts."""
    now = int(time.time())
    key_attrs = dynamo.encode(keys.throttle_key(kind, key))
    try:
        aws.dynamodb().update_item(
            TableName=dynamo.table(),
            Key=key_attrs,
            UpdateExpression="ADD failures :one",
            ConditionExpression="expires_at > :now",
            ExpressionAttributeValues=dynamo.encode({":one": 1, ":now": now}),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        # No window open (or it ended): start a new one.
        aws.dynamodb().put_item(
            TableName=dynamo.table(),
            Item=dynamo.encode({**keys.throttle_key(kind, key), "failures": 1, "expires_at": now + window_seconds}),
        )


# --- repository access ----------------------------------------------------------------


def repository(name: str) -> dict | None:
    """The repository's catalog item (visibility, grants), or None when it has none yet."""
    return dynamo.get(keys.catalog_key(name))


def repositories(names: list[str]) -> list[dict | None]:
    """The catalog items of ``names`` (None where absent), in order, in one BatchGetItem per 100 names."""
    return dynamo.get_many([keys.catalog_key(name) for name in names])


# A conditional write that lost to a concurrent push or access change is retried
# on a fresh read this many times (each loser sees the winner's change).
_ACCESS_ATTEMPTS = 5


class NoSuchUser(Exception):
    """A grant names a user that does not exist (or was deleted meanwhile)."""


def set_repository_access(name: str, visibility: str | None = None, grant: tuple[str, str | None] | None = None):
    """Set visibility, or grant (user, action) / revoke (user, None).

    Creates the catalog item if needed (so access can be set before the first
    push) without ``created``: the repository exists once a manifest is pushed.
    One transaction writes the catalog item, the catalog index entries it
    implies once the repository exists (``catalog_index``) and the grantee's
    ``USER#<user> / GRANT#<name>`` record, on the condition that the item is
    as read and, for a grant, that the user exists (raises ``NoSuchUser``).
    """
    for attempt in range(_ACCESS_ATTEMPTS):
        before = dynamo.get(keys.catalog_key(name), consistent=True)
        after, writes = _access_writes(name, before, visibility, grant)
        try:
            dynamo.transact(writes)
            return after
        except ClientError as exc:
            if grant is not None and grant[1] is not None and catalog_index.condition_failed(exc, 1):
                raise NoSuchUser(grant[0]) from None
            if not catalog_index.condition_failed(exc, 0) or attempt == _ACCESS_ATTEMPTS - 1:
                raise


def _access_writes(name: str, before: dict | None, visibility: str | None, grant: tuple[str, str | None] | None) -> tuple[dict, list[dict]]:
    """(the catalog item after the change, the transaction that makes it)."""
    now = int(time.time())
    after = dict(before or {})
    grants = dict(after.get("grants") or {})
    values = {":now": now, ":one": 1}
    sets = ["access_updated = :now"]
    if visibility is not None:
        after["visibility"] = values[":visibility"] = visibility
        sets.append("visibility = :visibility")
    writes = []
    if grant is not None:
        user, action = grant
        if action is None:
            grants.pop(user, None)
            writes.append({"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.user_grant_key(user, name))}})
        else:
            grants[user] = action
            exists = {"TableName": dynamo.table(), "Key": dynamo.encode(keys.user_key(user)), "ConditionExpression": "attribute_exists(pk)"}
            writes.append({"ConditionCheck": exists})
            record = {**keys.user_grant_key(user, name), "action": action}
            writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(record)}})
        # The whole map, from the read the condition pins: no separate write to create it first.
        after["grants"] = values[":grants"] = grants
        sets.append("grants = :grants")
    after["access_version"] = int(after.get("access_version") or 0) + 1
    condition, condition_values = catalog_index.unchanged_condition(before)
    catalog = {
        "TableName": dynamo.table(),
        "Key": dynamo.encode(keys.catalog_key(name)),
        "UpdateExpression": "SET " + ", ".join(sets) + " ADD access_version :one",
        "ConditionExpression": condition,
        "ExpressionAttributeValues": dynamo.encode({**values, **condition_values}),
    }
    return after, [{"Update": catalog}, *writes, *catalog_index.changes(name, before, after)]
