"""The upload function: blob upload sessions, monolithic uploads, cross-repository mounts and direct-to-S3 parts."""

from registry.http import make_handler
from registry.services import uploads

lambda_handler = make_handler(
    "upload",
    {
        "upload.start": {"POST": uploads.start},
        "upload.session": {"GET": uploads.status, "PATCH": uploads.patch, "PUT": uploads.complete, "DELETE": uploads.cancel},
        "upload.parts": {"POST": uploads.part_urls, "GET": uploads.parts_received},
    },
)
