"""The catalog function: the repository list and tag lists."""

from registry.http import make_handler
from registry.services import catalog

lambda_handler = make_handler("catalog", {"catalog": {"GET": catalog.repositories}, "tags": {"GET": catalog.tags}})
