"""The fetch function: copies a large upstream blob into the pull-through cache, in parts across invocations.

Triggered by the fetch queue (SQS); see registry.services.fetching.
"""

from registry.services.fetching import handle_queue_event

lambda_handler = handle_queue_event
