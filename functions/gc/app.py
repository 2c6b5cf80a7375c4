"""The gc function: online garbage collection on a schedule (see registry.services.gc)."""

from registry.services.gc import handle_schedule

lambda_handler = handle_schedule
