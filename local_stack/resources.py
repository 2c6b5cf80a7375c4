"""Create the template's S3 bucket and DynamoDB table in an emulated AWS (moto).

Properties come from ``template.yaml`` itself, so the local stack and the unit
tests cannot disagree with what ``sam deploy`` creates.
"""

from __future__ import annotations

import boto3

from local_stack import template

BUCKET_NAME = "registry-blobs"
TABLE_NAME = "registry-metadata"


def _resolve(value, t: dict):
    """Resolve ``!Ref Parameter`` to the parameter's default; leave literals alone."""
    if isinstance(value, dict) and "Ref" in value:
        return t["Parameters"][value["Ref"]]["Default"]
    return value


def create_table(name: str = TABLE_NAME) -> str:
    t = template.load()
    props = template.resource_properties("MetadataTable", t)
    client = boto3.client("dynamodb")
    client.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        BillingMode=props["BillingMode"],
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        client.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def create_bucket(name: str = BUCKET_NAME) -> str:
    t = template.load()
    props = template.resource_properties("BlobBucket", t)
    client = boto3.client("s3")
    client.create_bucket(Bucket=name)
    client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    encryption = [
        {"ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"]}
        for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    ]
    client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": encryption})
    rules = []
    for rule in props["LifecycleConfiguration"]["Rules"]:
        api_rule = {"ID": rule["Id"], "Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
        if "ExpirationInDays" in rule:
            api_rule["Expiration"] = {"Days": int(_resolve(rule["ExpirationInDays"], t))}
        if "AbortIncompleteMultipartUpload" in rule:
            days = _resolve(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"], t)
            api_rule["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(days)}
        rules.append(api_rule)
    client.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": rules})
    return name


def create_signing_key() -> str:
    """The token signing key, as template.yaml declares it; returns its key id.

    Also makes the emulator's Sign behave as AWS's (local_stack.kms).
    """
    from local_stack import kms

    kms.install()
    props = template.resource_properties("TokenSigningKey")
    client = boto3.client("kms")
    key = client.create_key(KeySpec=props["KeySpec"], KeyUsage=props["KeyUsage"], Description=props["Description"])
    return key["KeyMetadata"]["KeyId"]


def function_environment(bucket: str = BUCKET_NAME, table: str = TABLE_NAME, signing_key: str = "") -> dict[str, str]:
    """The Globals environment of template.yaml, with resources named as created here."""
    t = template.load()
    names = {"BlobBucket": bucket, "MetadataTable": table, "TokenSigningKey": signing_key}
    env = {}
    for key, value in t["Globals"]["Function"]["Environment"]["Variables"].items():
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            env[key] = str(names[ref] if ref in names else t["Parameters"][ref]["Default"])
        elif isinstance(value, str):
            env[key] = value
        # Other intrinsics (!Sub with a mapping) keep the code's default.
    return env
