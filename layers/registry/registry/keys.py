"""The storage layout: every S3 key and DynamoDB key the registry uses, here once.

S3 bucket (BLOB_BUCKET)::

    blobs/<alg>/<hex>        verified content, one object per digest, shared by
                             all repositories (layers, configs, and manifests
                             too large to keep inline in DynamoDB)
    uploads/<uuid>/tail/<w>  bytes of an open upload not yet in a multipart part
                             (a new key per write, so racing writes never clash)
    uploads/<uuid>/parts     the multipart upload a large blob is assembled in
                             (each part >= 5 MiB); the lifecycle rule expires
                             uploads/ and aborts multipart uploads left behind

DynamoDB table (METADATA_TABLE), string keys ``pk`` and ``sk``::

    pk                 sk                 attributes
    REPO#<name>        TAG#<tag>          digest, media_type, size, body | in_s3
    REPO#<name>        MANIFEST#<digest>  media_type, size, body | in_s3
    REPO#<name>        BLOB#<digest>      size            (the repository's link);
                                          upstream, pending: a pull-through cache's blob
                                          not fetched yet (registry.services.pullthrough)
    REPO#<name>        REFERRER#<subject>#<digest>
                                          media_type, size, artifact_type, annotations
                                          (a manifest whose subject is <subject>;
                                          artifact_type + annotations <= 16 KiB)
    REPO#<name>        CHILD#<child>#<index>
                                          (index <index> lists manifest <child>)
    REPO#<name>        USES#<blob>#<manifest>
                                          created (manifest <manifest> references blob
                                          <blob>; written before the manifest)
    REPO#<name>        PUSHED#<when>#<tag>
                                          (tag <tag> was pushed at <when>, epoch s, 12
                                          digits: its ``updated``; written with the tag,
                                          so retention finds the oldest tags in order)
    CATALOG            <name>             created, updated, visibility, grants,
                                          description, stars, official
                                          (one per repository; grants: user -> pull|push;
                                          access_version counts access changes)
    VISIBLE#all        <name>             (every repository pushed to: admins, and a
                                          user's namespace by begins_with <user>/)
    VISIBLE#public     <name>             (pushed to, visibility set to public)
    VISIBLE#default    <name>             (pushed to, no visibility set: listed to
                                          everyone while DEFAULT_VISIBILITY is public)
    GRANTEE#<user>     <name>             (pushed to, <user> holds a grant on it)
    STAR#<name>        <user>             (one per user who starred the repository)
    GRAM#<gram>        <name>             (the name contains <gram>: every 1 to 3
                                          character substring, for substring search)
    WORD#<word>        <name>             (the description has the whole word <word>)
    BLOB#<digest>      BLOB               size, created   (the verified S3 object);
                                          epoch, lease_until (a push is writing it),
                                          gc_mark, doomed, doomed_at (garbage collection)
    BLOB#<digest>      LINK#<name>        (repository <name> links the blob)
    USAGE              <namespace>        logical, dedup (bytes), repositories, quota
                                          (a namespace's storage counters and quota;
                                          the partition lists namespaces for usage)
    USAGE#<namespace>  REPO#<name>        logical (bytes a repository's links and
                                          manifests hold)
    USAGE#<namespace>  BLOB#<digest>      refs, size (how many repositories of the
                                          namespace link the blob; absent at 0)
    USAGE_TOTAL        SHARD#<h>          dedup, objects: the counted blob objects
                                          whose digest's hex starts with <h> (16 shards)
    GC                 <kind>#<since>#<nonce>
                                          name, digest: something that may have become
                                          garbage at <since> (epoch seconds, 12 digits);
                                          <kind> MANIFEST | LINK | BLOB | UPLOAD
    RETENTION          <name> | <ns>/*    keep, expire_days, tags, untagged_days, updated:
                                          the retention policy of a repository, or of
                                          every repository of namespace <ns>
                                          (registry.services.retention)
    RETENTION#untagged <days>#<name>      (the policy of <name> keeps untagged manifests
                                          <days> days, 5 digits: GC reads the smallest)
    RETENTION#cursor   CURSOR             policy, repository, below: where the last
                                          pass's retention step stopped
    UPLOAD#<uuid>      UPLOAD             name, owner, offset, hash states, tail_key,
                                          multipart id, part ETags (<= 1,024: a blob
                                          is <= 5 GiB in parts >= 5 MiB), expires_at (TTL)
    USER#<user>        USER               password (scrypt), admin, disabled, created
    USER#<user>        TOKEN#<id>         secret_sha256, scope, description, created,
                                          revoked, expires_at (TTL, optional)
    USER#<user>        REFRESH#<id>       secret_sha256, token_id, expires_at (TTL)
    USER#<user>        GRANT#<name>       action: every grant the user holds, pushed
                                          to or not (found and removed with the user)
    UPSTREAM           <prefix>           url, library, credentials (a Secrets Manager id,
                                          never the credentials): a pull-through cache
                                          upstream set by registry-admin (registry.services.pullthrough)
    CACHEDAY#<day>     <name>#<tag>       (the cached tag was fetched or revalidated on
                                          <day>, YYYY-MM-DD: the expiry's index, read
                                          one day partition at a time)
    CACHEEXPIRY        CURSOR             day: the last day partition the expiry finished
    SIGNING_KEY        <kid>              public_key (DER), published, expires_at (TTL,
                                          set when retired): a token signing key's
                                          public half (registry.storage.signing_keys;
                                          at most 10 listed in the JWKS)
    THROTTLE#<kind>#<hmac> THROTTLE       failures, expires_at (TTL): failed sign-ins
                                          per <kind> (account, account-source, source);
                                          <hmac> is registry.auth.pseudonym's keyed hash
                                          of the account and/or address, never the value
                                          a client sent (it may be a secret typed into
                                          the user-name field)

Manifest items also hold ``tags`` (the set of tags pointing at them) and
``upstream`` and ``checked`` (pull-through cache: the prefix it came from and
when its tag was last fetched or revalidated), ``tracked`` (equal to ``created`` when the item was created by a version that
keeps ``tags``); manifests, links and blob records may hold ``gc_mark``
(registry.services.gc), and ``counted`` once they are in the storage counters
(registry.storage.usage).

A blob is served only through its repository link: the link is the access
check. The ``VISIBLE#`` and ``GRANTEE#`` partitions are the catalog's indexes: a
caller's catalog page merges the partitions they may see, so it reads about
``n`` items whatever the size of the registry; they are written in the same
transaction as the catalog item they mirror (``registry.storage.catalog_index``).
Tags carry a copy of the manifest so a pull by tag is one read.

Sizes. DynamoDB refuses an item over 400 KB, a partition key over 2,048 bytes
and a sort key over 1,024 (AWS docs, "Service, account, and table quotas in
Amazon DynamoDB"). What a client's input makes grow is bounded below them:
``<name>`` is at most 255 characters, ``<tag>`` 128, a retention tag
pattern 128, a digest 135
(``sha512:`` + 128 hex), ``<gram>`` 3, ``<word>`` a word of a description of
at most 100 characters, ``<user>`` 30; a manifest body is kept inline only up
to 256 KiB (larger ones in ``blobs/``), a referrer's copied artifactType and
annotations at most 16 KiB, an upload's part ETags at most 1,024.
``tests/dynamodb_limits.py`` checks every DynamoDB call the tests make.
"""

from __future__ import annotations

from registry.references import Digest

# --- S3 ---------------------------------------------------------------------


def blob_object(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex}"


def upload_tail(upload_id: str, write_id: str) -> str:
    return f"uploads/{upload_id}/tail/{write_id}"


def upload_parts(upload_id: str) -> str:
    return f"uploads/{upload_id}/parts"


UPLOADS_PREFIX = "uploads/"

# --- DynamoDB ----------------------------------------------------------------

CATALOG_PK = "CATALOG"
TAG_PREFIX = "TAG#"


def repo_pk(name: str) -> str:
    return f"REPO#{name}"


def tag_key(name: str, tag: str) -> dict:
    return {"pk": repo_pk(name), "sk": f"{TAG_PREFIX}{tag}"}


def manifest_key(name: str, digest: Digest) -> dict:
    return {"pk": repo_pk(name), "sk": f"MANIFEST#{digest}"}


def link_key(name: str, digest: Digest) -> dict:
    return {"pk": repo_pk(name), "sk": f"BLOB#{digest}"}


def catalog_key(name: str) -> dict:
    return {"pk": CATALOG_PK, "sk": name}


def blob_key(digest: Digest) -> dict:
    return {"pk": f"BLOB#{digest}", "sk": "BLOB"}


def upload_key(upload_id: str) -> dict:
    return {"pk": f"UPLOAD#{upload_id}", "sk": "UPLOAD"}


def referrers_prefix(subject: Digest) -> str:
    return f"REFERRER#{subject}#"


def referrer_key(name: str, subject: Digest, digest: Digest) -> dict:
    return {"pk": repo_pk(name), "sk": f"{referrers_prefix(subject)}{digest}"}


def parents_prefix(child: Digest) -> str:
    return f"CHILD#{child}#"


def child_key(name: str, child: Digest, index: Digest) -> dict:
    return {"pk": repo_pk(name), "sk": f"{parents_prefix(child)}{index}"}


def uses_prefix(blob: Digest) -> str:
    return f"USES#{blob}#"


def uses_key(name: str, blob: Digest, manifest: Digest) -> dict:
    return {"pk": repo_pk(name), "sk": f"{uses_prefix(blob)}{manifest}"}


LINK_PREFIX = "LINK#"


def reverse_link_key(digest: Digest, name: str) -> dict:
    """The blob's record of a repository linking it: lets GC ask "does any repository link it?" in one Query."""
    return {"pk": f"BLOB#{digest}", "sk": f"{LINK_PREFIX}{name}"}


PUSHED_PREFIX = "PUSHED#"


def pushed_key(name: str, tag: str, when: int) -> dict:
    """The push-time index entry of ``tag`` (``when``: its ``updated``, epoch seconds)."""
    return {"pk": repo_pk(name), "sk": f"{PUSHED_PREFIX}{int(when):012d}#{tag}"}


RETENTION_PK = "RETENTION"
RETENTION_UNTAGGED_PK = "RETENTION#untagged"
NAMESPACE_SUFFIX = "/*"


def retention_key(subject: str) -> dict:
    """A retention policy: ``subject`` is a repository name, or ``<namespace>/*`` (names never hold ``*``)."""
    return {"pk": RETENTION_PK, "sk": subject}


def retention_untagged_key(subject: str, days: int) -> dict:
    return {"pk": RETENTION_UNTAGGED_PK, "sk": f"{int(days):05d}#{subject}"}


def retention_cursor_key() -> dict:
    return {"pk": "RETENTION#cursor", "sk": "CURSOR"}


GC_PK = "GC"

USAGE_PK = "USAGE"


def usage_key(namespace: str) -> dict:
    """A namespace's storage counters (registry.storage.usage); the USAGE partition lists namespaces."""
    return {"pk": USAGE_PK, "sk": namespace}


def usage_repository_key(name: str) -> dict:
    return {"pk": f"USAGE#{name.split('/', 1)[0]}", "sk": f"REPO#{name}"}


def usage_blob_key(namespace: str, digest: Digest) -> dict:
    return {"pk": f"USAGE#{namespace}", "sk": f"BLOB#{digest}"}


def usage_total_key(shard: str) -> dict:
    return {"pk": "USAGE_TOTAL", "sk": f"SHARD#{shard}"}


def candidate_key(kind: str, since: int, nonce: str) -> dict:
    """A garbage-collection candidate; sorted by kind, then by when it may have become garbage."""
    return {"pk": GC_PK, "sk": f"{kind}#{since:012d}#{nonce}"}


def user_key(user: str) -> dict:
    return {"pk": f"USER#{user}", "sk": "USER"}


def user_pk(user: str) -> str:
    return f"USER#{user}"


TOKEN_PREFIX = "TOKEN#"
REFRESH_PREFIX = "REFRESH#"


def access_token_key(user: str, token_id: str) -> dict:
    return {"pk": user_pk(user), "sk": f"{TOKEN_PREFIX}{token_id}"}


def refresh_token_key(user: str, token_id: str) -> dict:
    return {"pk": user_pk(user), "sk": f"{REFRESH_PREFIX}{token_id}"}


def throttle_key(kind: str, pseudonym: str) -> dict:
    """``pseudonym``: a keyed hash (registry.auth.pseudonym), 43 characters; never a raw client value."""
    return {"pk": f"THROTTLE#{kind}#{pseudonym}", "sk": "THROTTLE"}


VISIBLE_ALL_PK = "VISIBLE#all"
VISIBLE_PUBLIC_PK = "VISIBLE#public"
VISIBLE_DEFAULT_PK = "VISIBLE#default"
GRANTEE_PREFIX = "GRANTEE#"
GRANT_PREFIX = "GRANT#"


def visible_key(pk: str, name: str) -> dict:
    """An entry of one of the ``VISIBLE#…`` catalog indexes."""
    return {"pk": pk, "sk": name}


def grantee_pk(user: str) -> str:
    return f"{GRANTEE_PREFIX}{user}"


def grantee_key(user: str, name: str) -> dict:
    return {"pk": grantee_pk(user), "sk": name}


def user_grant_key(user: str, name: str) -> dict:
    return {"pk": user_pk(user), "sk": f"{GRANT_PREFIX}{name}"}


def star_key(name: str, user: str) -> dict:
    return {"pk": f"STAR#{name}", "sk": user}


def gram_key(gram: str, name: str) -> dict:
    return {"pk": f"GRAM#{gram}", "sk": name}


def word_key(word: str, name: str) -> dict:
    return {"pk": f"WORD#{word}", "sk": name}


SIGNING_KEY_PK = "SIGNING_KEY"


def signing_key_key(kid: str) -> dict:
    """``kid``: 20 base64url characters (registry.auth.tokens checks a token's before reading)."""
    return {"pk": SIGNING_KEY_PK, "sk": kid}


UPSTREAM_PK = "UPSTREAM"


def upstream_key(prefix: str) -> dict:
    """``prefix``: one name component (registry.services.pullthrough.parse_upstreams checks it)."""
    return {"pk": UPSTREAM_PK, "sk": prefix}


def cache_day_pk(day: str) -> str:
    return f"CACHEDAY#{day}"


def cache_day_key(day: str, name: str, tag: str) -> dict:
    """A cached tag fetched or revalidated on ``day`` (YYYY-MM-DD); sk at most 255 + 1 + 128 bytes."""
    return {"pk": cache_day_pk(day), "sk": f"{name}#{tag}"}


def cache_expiry_cursor_key() -> dict:
    return {"pk": "CACHEEXPIRY", "sk": "CURSOR"}
