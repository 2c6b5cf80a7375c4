"""The registry's direct-to-S3 upload extension, from the client side, and S3 part uploads.

Protocol (docs/endpoints.md of the registry): ``POST <session>/parts?first=N&count=K`` gives presigned
S3 ``UploadPart`` URLs (K <= 100, valid ``expiresIn`` seconds) and switches the session to direct
mode; each part is a ``PUT <url>`` with its bytes and no ``Authorization`` (S3 refuses a request with
both a presigned query and the header); ``PUT <session>?digest=`` with an empty body completes, and
answers ``202`` with ``Retry-After`` while the registry still verifies the digest.

Every call to the registry carries the client's own ``Authorization`` from the request being served:
the proxy keeps no credential.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from registry_proxy import retry
from registry_proxy.errors import ProxyError, UpstreamError, unreachable
from registry_proxy.parts import MAX_PARTS, Buffer

BATCH = 100  # the extension's largest count
# A URL younger than its lifetime minus this margin is used; older ones are asked for again.
EXPIRY_MARGIN = 60
# Retry-After of a completion still verifying: honoured, but within these bounds (seconds).
POLL_MIN, POLL_MAX = 0.2, 30.0
# What API Gateway answers when a function failed or ran out of its 30 s: worth another completion try.
GATEWAY_FAILURES = frozenset({500, 502, 503, 504})


@dataclass
class PartUrls:
    """Presigned part URLs of one session: part number -> (url, monotonic time after which to ask again)."""

    urls: dict[int, tuple[str, float]] = field(default_factory=dict)
    # One request for URLs at a time: parts waiting for the same batch share it.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def get(self, number: int) -> str | None:
        entry = self.urls.get(number)
        if entry is None or time.monotonic() >= entry[1]:
            return None
        return entry[0]

    def forget(self, number: int) -> None:
        self.urls.pop(number, None)

    def add(self, parts: list[dict], expires_in: float) -> None:
        stale_at = time.monotonic() + max(expires_in - EXPIRY_MARGIN, expires_in / 2)
        for part in parts:
            self.urls[int(part["partNumber"])] = (part["url"], stale_at)


def _auth(authorization: str | None) -> dict:
    return {"Authorization": authorization} if authorization else {}


async def _error(response: aiohttp.ClientResponse) -> UpstreamError:
    return UpstreamError(response.status, list(response.headers.items()), await response.read())


class Direct:
    """Calls of the direct-upload extension and part uploads over one aiohttp client session."""

    def __init__(self, client: aiohttp.ClientSession, attempts: int):
        self.client, self.attempts = client, attempts

    async def request_urls(self, session_url: str, first: int, authorization: str | None, urls: PartUrls) -> None:
        """Ask the registry for URLs of parts *first* .. *first*+99 (within 10,000) into *urls*."""
        count = min(BATCH, MAX_PARTS - first + 1)
        target = f"{session_url}/parts?{urlencode({'first': first, 'count': count})}"
        try:
            async with self.client.post(URL(target, encoded=True), headers=_auth(authorization), data=b"") as response:
                if response.status != 200:
                    raise await _error(response)
                answer = json.loads(await response.read())
        except aiohttp.ClientError as error:
            raise unreachable("the registry", error) from error
        urls.add(answer["parts"], float(answer.get("expiresIn", 900)))

    async def url(self, session_url: str, number: int, authorization: str | None, urls: PartUrls) -> str:
        """A fresh presigned URL for part *number*."""
        found = urls.get(number)
        if found is None:
            async with urls.lock:
                found = urls.get(number)
                if found is None:
                    await self.request_urls(session_url, number, authorization, urls)
                    found = urls.get(number)
        if found is None:
            raise ProxyError(502, "UNKNOWN", f"the registry gave no URL for part {number}")
        return found

    async def upload_part(self, session_url: str, number: int, data: Buffer, authorization: str | None,
                          urls: PartUrls) -> None:
        """PUT part *number* to S3, retrying transient failures with backoff (see ``retry``).

        A 403 means the presigned URL expired (or was refused): a fresh one is asked for once per try.
        Raises ProxyError 502 when S3 keeps failing or refuses the part.
        """
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(retry.backoff(attempt))
            target = await self.url(session_url, number, authorization, urls)
            try:
                # Sent chunk by chunk with its length: no copy of the part, no chunked encoding.
                async with self.client.put(URL(target, encoded=True), data=data.stream(),
                                           headers={"Content-Length": str(len(data))},
                                           skip_auto_headers=("Content-Type",)) as response:
                    await response.read()
                    if response.status == 200:
                        return
                    last = f"S3 answered {response.status}"
                    if response.status == 403:
                        urls.forget(number)
                    elif not retry.retryable(response.status):
                        break
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                last = type(error).__name__
        raise ProxyError(502, "UNKNOWN", f"part {number} could not be uploaded to S3 ({last})")

    async def complete(self, session_url: str, digest: str, authorization: str | None) -> aiohttp.ClientResponse:
        """``PUT <session>?digest=`` with an empty body, repeated while the registry answers 202.

        Returns the final response (201, its body read); raises UpstreamError with any other answer.
        A gateway failure (5xx) is tried again with backoff (the extension makes the PUT idempotent).
        """
        target = URL(f"{session_url}?{urlencode({'digest': digest})}", encoded=True)
        failures = 0
        while True:
            try:
                async with self.client.put(target, headers={**_auth(authorization), "Content-Length": "0"}, data=b"") as response:
                    await response.read()
                    if response.status == 201:
                        return response
                    if response.status == 202:
                        wait = _retry_after(response.headers.get("Retry-After"))
                    elif response.status in GATEWAY_FAILURES and failures + 1 < self.attempts:
                        failures += 1  # the PUT is idempotent: a timed-out one is simply sent again
                        wait = retry.backoff(failures)
                    else:
                        raise await _error(response)
            except aiohttp.ClientError as error:
                raise unreachable("the registry", error) from error
            await asyncio.sleep(wait)

    async def cancel(self, session_url: str, authorization: str | None) -> None:
        """``DELETE <session>``, best effort (an abandoned session also expires on its own)."""
        try:
            async with self.client.delete(URL(session_url, encoded=True), headers=_auth(authorization)) as response:
                await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError):
            pass


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` of delay-seconds (RFC 9110 §10.2.3), within POLL_MIN..POLL_MAX; 1 if absent."""
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        seconds = 1.0
    return min(POLL_MAX, max(POLL_MIN, seconds))
