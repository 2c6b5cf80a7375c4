"""The blob function: redirect blob pulls to S3, answer HEAD, delete links."""

from registry.http import make_handler
from registry.services import blobs

lambda_handler = make_handler("blob", {"blob": {"GET": blobs.get, "HEAD": blobs.get, "DELETE": blobs.delete}})
