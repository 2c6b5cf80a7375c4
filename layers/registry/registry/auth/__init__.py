"""Token authentication, Docker-style: scopes, KMS-signed JWTs, and the check every function runs.

    scopes.py   parse ``repository:team/app:pull,push`` and friends
    tokens.py   sign (KMS) and verify (public key, fetched once) the bearer JWTs
    guard.py    what a route needs, the WWW-Authenticate challenge, the check itself
"""
