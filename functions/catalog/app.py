"""The catalog function: content discovery — the repository list, tag lists and referrers."""

from registry.http import make_handler
from registry.services import catalog, referrers

lambda_handler = make_handler(
    "catalog",
    {"catalog": {"GET": catalog.repositories}, "tags": {"GET": catalog.tags}, "referrers": {"GET": referrers.list_referrers}},
)
