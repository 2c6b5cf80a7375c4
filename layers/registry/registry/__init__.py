"""The registry's shared code, shipped to every function as a Lambda layer.

request flow: functions/<fn>/app.py -> registry.http (routing, errors)
-> registry.services.* (the protocol) -> registry.storage.* (S3, DynamoDB).
"""
