"""The verify function: carries a direct upload's digest check past the request that completed it.

Triggered by the verification queue (SQS); see registry.services.verification.
"""

from registry.services.verification import handle_queue_event

lambda_handler = handle_queue_event
