"""Create the template's S3 bucket and DynamoDB table in an emulated AWS (moto).

Properties come from ``template.yaml`` itself, so the local stack and the unit
tests cannot disagree with what ``sam deploy`` creates.
"""

from __future__ import annotations

import json

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


def create_signing_secret() -> str:
    """The token signing secret of ``TokenSigning=secret``, as template.yaml declares it
    (encrypted under its own symmetric KMS key, a generated random string); returns its ARN."""
    t = template.load()
    key_props = template.resource_properties("TokenSecretKey", t)
    key = boto3.client("kms").create_key(KeySpec=key_props["KeySpec"], KeyUsage=key_props["KeyUsage"], Description=key_props["Description"])
    props = template.resource_properties("TokenSigningSecret", t)
    generate = props["GenerateSecretString"]
    client = boto3.client("secretsmanager")
    value = client.get_random_password(PasswordLength=generate["PasswordLength"], ExcludePunctuation=generate["ExcludePunctuation"])["RandomPassword"]
    secret = client.create_secret(
        Name="registry-token-signing", Description=props["Description"], KmsKeyId=key["KeyMetadata"]["KeyId"], SecretString=value
    )
    return secret["ARN"]


def create_queues() -> dict[str, str]:
    """Every SQS queue of template.yaml (dead-letter targets first); logical id -> queue URL."""
    t = template.load()
    queues = {logical_id: r.get("Properties") or {} for logical_id, r in t["Resources"].items() if r.get("Type") == "AWS::SQS::Queue"}
    client = boto3.client("sqs")
    urls, arns = {}, {}
    for logical_id in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]):
        props = queues[logical_id]
        attributes = {name: str(props[name]) for name in ("VisibilityTimeout", "MessageRetentionPeriod") if name in props}
        if "RedrivePolicy" in props:
            policy = dict(props["RedrivePolicy"])
            policy["deadLetterTargetArn"] = arns[policy["deadLetterTargetArn"]["Fn::GetAtt"].split(".")[0]]
            attributes["RedrivePolicy"] = json.dumps(policy)
        urls[logical_id] = client.create_queue(QueueName=f"registry-{logical_id}", Attributes=attributes)["QueueUrl"]
        arns[logical_id] = client.get_queue_attributes(QueueUrl=urls[logical_id], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return urls


def create_sign_in_hash_key() -> str:
    """The HMAC key of sign-in throttles (registry.auth.pseudonym), as template.yaml declares it."""
    props = template.resource_properties("SignInHashKey")
    client = boto3.client("kms")
    key = client.create_key(KeySpec=props["KeySpec"], KeyUsage=props["KeyUsage"], Description=props["Description"])
    return key["KeyMetadata"]["KeyId"]


def function_environment(
    bucket: str = BUCKET_NAME,
    table: str = TABLE_NAME,
    signing_key: str = "",
    queues: dict | None = None,
    hash_key: str = "",
    signing_secret: str = "",
    parameters: dict | None = None,
) -> dict[str, str]:
    """The Globals environment of template.yaml, with resources named as created here and
    its conditions decided by the parameters' defaults, overridden by ``parameters``."""
    t = template.load()
    names = {"BlobBucket": bucket, "MetadataTable": table, "TokenSigningKey": signing_key, "SignInHashKey": hash_key,
             "TokenSigningSecret": signing_secret}
    for logical_id, resource in t["Resources"].items():
        if resource.get("Type") == "AWS::SQS::Queue":
            names[logical_id] = (queues or {}).get(logical_id, "")
    env = {}
    variables = template.resolve_conditions(t["Globals"]["Function"]["Environment"]["Variables"], t, parameters)
    for key, value in variables.items():
        if isinstance(value, dict) and "Ref" in value:
            ref = value["Ref"]
            env[key] = str(names[ref] if ref in names else (parameters or {}).get(ref, t["Parameters"][ref]["Default"]))
        elif isinstance(value, str):
            env[key] = value
        # Other intrinsics (!Sub with a mapping) keep the code's default.
    return env
