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


# CopyObject copies at most 5 GB in one call; larger objects are copied part by part.
COPY_OBJECT_MAX = 5 * 1000**3
# S3's multipart limits (docs: "Amazon S3 multipart upload limits").
MIN_PART = 5 * 1024 * 1024
MAX_PART = 5 * 1024**3
MAX_PARTS = 10_000


def copy_to_blob(source_key: str, digest: Digest):
    """Server-side copy of verified staging bytes to their content address (<= 5 GB)."""
    aws.s3().copy_object(
        Bucket=_bucket(),
        Key=keys.blob_object(digest),
        CopySource={"Bucket": _bucket(), "Key": source_key},
    )


def start_blob_multipart(digest: Digest) -> str:
    """A multipart upload at the blob's content address, for a copy larger than CopyObject takes."""
    return start_multipart(keys.blob_object(digest))


def copy_part_to_blob(source_key: str, digest: Digest, multipart_id: str, number: int, first: int, last: int) -> str:
    """UploadPartCopy bytes ``first``..``last`` (inclusive) of ``source_key`` as part ``number``; its ETag."""
    response = aws.s3().upload_part_copy(
        Bucket=_bucket(),
        Key=keys.blob_object(digest),
        UploadId=multipart_id,
        PartNumber=number,
        CopySource={"Bucket": _bucket(), "Key": source_key},
        CopySourceRange=f"bytes={first}-{last}",
    )
    return response["CopyPartResult"]["ETag"]


def complete_blob_multipart(digest: Digest, multipart_id: str):
    """Complete a blob's multipart copy with every part S3 holds for it."""
    key = keys.blob_object(digest)
    parts = [{"PartNumber": p["number"], "ETag": p["etag"]} for p in all_parts(key, multipart_id)]
    aws.s3().complete_multipart_upload(Bucket=_bucket(), Key=key, UploadId=multipart_id, MultipartUpload={"Parts": parts})


def presigned_part(key: str, multipart_id: str, number: int, expires: int) -> str:
    """A URL that lets its holder PUT part ``number`` of the multipart upload, for ``expires`` s; no S3 call."""
    return aws.s3().generate_presigned_url(
        "upload_part",
        Params={"Bucket": _bucket(), "Key": key, "UploadId": multipart_id, "PartNumber": number},
        ExpiresIn=expires,
    )


class NoSuchUpload(Exception):
    """The multipart upload was completed, aborted, or expired."""


def list_parts(key: str, multipart_id: str, after: int = 0, limit: int = 1000) -> tuple[list[dict], int | None]:
    """One page of the parts S3 holds: ([{number, size, etag}], the next marker or None). One ListParts call."""
    try:
        response = aws.s3().list_parts(Bucket=_bucket(), Key=key, UploadId=multipart_id, PartNumberMarker=after, MaxParts=limit)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchUpload", "404"):
            raise NoSuchUpload() from None
        raise
    parts = [{"number": int(p["PartNumber"]), "size": int(p["Size"]), "etag": p["ETag"]} for p in response.get("Parts", [])]
    more = response.get("IsTruncated") and response.get("NextPartNumberMarker")
    return parts, int(more) if more else None


def all_parts(key: str, multipart_id: str) -> list[dict]:
    """Every part (at most 10,000: ten ListParts calls)."""
    parts, after = [], 0
    while after is not None:
        page, after = list_parts(key, multipart_id, after)
        parts += page
    return parts


class PartTooSmall(Exception):
    """CompleteMultipartUpload refused: a part other than the last is under 5 MiB."""


def complete_listed(key: str, multipart_id: str) -> int:
    """Complete a multipart upload with every part it holds, in part-number order; returns the object's size.

    Raises ``PartTooSmall`` (a part but the last under 5 MiB), ``NoSuchUpload``, or
    ``PartsChanged`` when there is no part at all.
    """
    parts = all_parts(key, multipart_id)
    if not parts:
        raise PartsChanged()
    try:
        aws.s3().complete_multipart_upload(
            Bucket=_bucket(),
            Key=key,
            UploadId=multipart_id,
            MultipartUpload={"Parts": [{"PartNumber": p["number"], "ETag": p["etag"]} for p in parts]},
        )
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "EntityTooSmall":
            raise PartTooSmall() from None
        if code in ("InvalidPart", "InvalidPartOrder"):
            raise PartsChanged() from None
        if code == "NoSuchUpload":
            raise NoSuchUpload() from None
        raise
    return sum(p["size"] for p in parts)


def staged_size(key: str) -> int | None:
    """The size of a staging object, or None when there is none (one HeadObject)."""
    try:
        return int(aws.s3().head_object(Bucket=_bucket(), Key=key)["ContentLength"])
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
            return None
        raise


def read_range(key: str, first: int, last: int, chunk: int = 1024 * 1024):
    """The bytes ``first``..``last`` (inclusive) of an object, as an iterator of chunks (one GetObject)."""
    body = aws.s3().get_object(Bucket=_bucket(), Key=key, Range=f"bytes={first}-{last}")["Body"]
    try:
        yield from body.iter_chunks(chunk)
    finally:
        body.close()


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
