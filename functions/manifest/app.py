"""The manifest function: pull, push and delete manifests by tag or digest."""

from registry.http import make_handler
from registry.services import manifests

lambda_handler = make_handler(
    "manifest",
    {"manifest": {"GET": manifests.get, "HEAD": manifests.get, "PUT": manifests.put, "DELETE": manifests.delete}},
)
