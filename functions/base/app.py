"""The base function: ``GET /v2/``, and the answer for every path no other function owns
(names deeper than the routed depth, wrong methods, unknown paths)."""

from registry.http import make_handler
from registry.services import base

lambda_handler = make_handler("base", {"base": {"GET": base.version, "HEAD": base.version}})
