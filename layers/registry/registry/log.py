"""The one structured logger (Powertools): JSON lines with request id, never a secret."""

from aws_lambda_powertools import Logger

logger = Logger(service="registry")
