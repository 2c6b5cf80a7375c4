"""``registry-admin``: manage users, access tokens and repository access of a registry.

Talks straight to the registry's DynamoDB table (local stack, a deployed
CloudFormation stack, or a table named directly) through ``registry.accounts``.
"""
