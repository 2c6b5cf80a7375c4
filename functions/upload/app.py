"""The upload function: blob upload sessions, monolithic uploads and cross-repository mounts."""

from registry.http import make_handler
from registry.services import uploads

lambda_handler = make_handler(
    "upload",
    {
        "upload.start": {"POST": uploads.start},
        "upload.session": {"GET": uploads.status, "PATCH": uploads.patch, "PUT": uploads.complete, "DELETE": uploads.cancel},
    },
)
