"""S3: verified blob objects, upload staging, presigned pull URLs.

The only module that speaks to S3. Keys come from ``registry.keys``. Nothing
here decides visibility: an object under ``blobs/`` is served only once
DynamoDB links it into a repository (see ``registry.services.uploads``).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from registry import aws, keys
from registry.config import settings
from registry.references import Digest


class StagingGone(Exception):
    """A staging object is no longer there: another request moved the upload on."""


class PartsChanged(Exception):
    """CompleteMultipartUpload refused: a part no longer has the ETag recorded for it."""


def _bucket() -> str:
    return settings().bucket


def presigned_get(digest: Digest) -> str:
    """A short-lived URL for the blob's bytes; computed locally, no S3 call."""
    return aws.s3().generate_presigned_url(
        "get_object",
        Params={"Bucket": _bucket(), "Key": keys.blob_object(digest)},
        ExpiresIn=settings().presign_seconds,
    )


def put_blob(digest: Digest, data: bytes):
    aws.s3().put_object(Bucket=_bucket(), Key=keys.blob_object(digest), Body=data)


def read_blob(digest: Digest) -> bytes:
    return aws.s3().get_object(Bucket=_bucket(), Key=keys.blob_object(digest))["Body"].read()


def copy_to_blob(source_key: str, digest: Digest):
    """Server-side copy of verified staging bytes to their content address (<= 5 GB)."""
    aws.s3().copy_object(
        Bucket=_bucket(),
        Key=keys.blob_object(digest),
        CopySource={"Bucket": _bucket(), "Key": source_key},
    )


def put_staging(key: str, data: bytes):
    aws.s3().put_object(Bucket=_bucket(), Key=key, Body=data)


def read_staging(key: str) -> bytes:
    try:
        return aws.s3().get_object(Bucket=_bucket(), Key=key)["Body"].read()
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
            raise StagingGone() from None
        raise


def delete_staging(key: str):
    aws.s3().delete_object(Bucket=_bucket(), Key=key)


def start_multipart(key: str) -> str:
    return aws.s3().create_multipart_upload(Bucket=_bucket(), Key=key)["UploadId"]


def upload_part(key: str, multipart_id: str, number: int, data: bytes) -> str:
    response = aws.s3().upload_part(Bucket=_bucket(), Key=key, UploadId=multipart_id, PartNumber=number, Body=data)
    return response["ETag"]


def complete_multipart(key: str, multipart_id: str, etags: list[str]):
    parts = [{"PartNumber": i, "ETag": etag} for i, etag in enumerate(etags, start=1)]
    try:
        aws.s3().complete_multipart_upload(Bucket=_bucket(), Key=key, UploadId=multipart_id, MultipartUpload={"Parts": parts})
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("InvalidPart", "InvalidPartOrder"):
            raise PartsChanged() from None
        raise


def abort_multipart(key: str, multipart_id: str):
    try:
        aws.s3().abort_multipart_upload(Bucket=_bucket(), Key=key, UploadId=multipart_id)
    except ClientError as exc:
        # Already completed or aborted: nothing left to clean.
        if exc.response["Error"]["Code"] != "NoSuchUpload":
            raise
