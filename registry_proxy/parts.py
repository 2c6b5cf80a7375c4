"""Cutting a client's blob body into S3 parts as it arrives.

Part sizes follow a fixed schedule, so a part's size depends only on its number: the first 1,000 parts
are the base size (8 MiB by default), the next 1,000 twice that, and so on, capped at S3's 5 GiB. With
8 MiB that is 7.8 GiB in 1,000 parts, and S3's 10,000 parts reach 7.8 TiB, beyond S3's 5 TiB object
limit (S3 User Guide, "Amazon S3 multipart upload limits": parts 1 to 10,000, 5 MiB to 5 GiB, every
part but the last at least 5 MiB). Memory grows with the part size only for blobs above 7.8 GiB.
"""

from __future__ import annotations

MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * 1024 ** 3
PARTS_PER_SIZE = 1_000
# How much of the client's body one read takes: small enough that the client's progress moves
# steadily, large enough that a 1 GiB blob is a few thousand reads.
READ_SIZE = 1 << 20


class TooManyParts(Exception):
    """The blob would need more than S3's 10,000 parts."""


def part_size(number: int, base: int) -> int:
    """Bytes in part *number* (1-based) when the first parts have *base* bytes; TooManyParts past 10,000."""
    if not 1 <= number <= MAX_PARTS:
        raise TooManyParts(f"part {number} is beyond S3's {MAX_PARTS} parts")
    return min(MAX_PART_SIZE, base << ((number - 1) // PARTS_PER_SIZE))


def split(total: int, base: int) -> list[int]:
    """The sizes of the parts a blob of *total* bytes is cut into (the last one may be short)."""
    sizes, number = [], 1
    while total > 0:
        size = min(total, part_size(number, base))
        sizes.append(size)
        total -= size
        number += 1
    return sizes


class Buffer:
    """The bytes of one part, kept as the chunks they were read in.

    Chunks are never joined or grown in place, so a part costs its own size in memory and no
    reallocation copies it (a growing ``bytearray`` may briefly need twice its size); the same chunks
    are sent again when a part is retried.
    """

    def __init__(self):
        self.chunks: list[bytes] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)

    def join(self) -> bytes:
        """All the bytes at once (for small blobs only)."""
        return b"".join(self.chunks)

    async def stream(self):
        """The chunks, as an async iterator an HTTP client can send as a body."""
        for chunk in self.chunks:
            yield chunk


async def fill(buffer: Buffer, target: int, stream) -> bool:
    """Read *stream* (an aiohttp ``StreamReader``) into *buffer* until it holds *target* bytes.

    Returns True when the stream ended first. Reads at most ``READ_SIZE`` at a time and never past
    *target*, so a part never holds a byte of the next one.
    """
    while len(buffer) < target:
        chunk = await stream.read(min(target - len(buffer), READ_SIZE))
        if not chunk:
            return True
        buffer.append(chunk)
    return False
