"""File contents as stored: content-addressed, zstd-compressed, delta-encoded. Pure.

A content is named by the SHA-256 of its bytes, so each distinct content is
stored once however many changes refer to it. It is compressed with zstd;
when a similar content is already stored (the file as it was before the
change), the new one is compressed with that one as a raw-content dictionary
("patch-from"), so a 100 KB file edited a thousand times costs its edits, not
a thousand copies. Deltas chain: decoding one needs its base decoded first.
Chains stop at :data:`MAX_DEPTH`, after which a full copy starts a new chain,
which bounds the work of reading any content.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping, Sequence

import zstandard

from threadline.errors import ContentCorrupt
from threadline.files.log import StoredContent

LEVEL = 3
MAX_DEPTH = 64
"""Longest chain of deltas below a content."""
MAX_DELTA_BASE = 64 << 20
"""Bases larger than this are not used as dictionaries (zstd windows reach 128 MB)."""
_MAX_WINDOW_LOG = 27
_MAX_HASH_LOG = 24

_FULL = zstandard.ZstdCompressor(level=LEVEL)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(
    data: bytes,
    *,
    digest: str | None = None,
    base: bytes | None = None,
    base_hash: str | None = None,
    base_depth: int = 0,
) -> StoredContent:
    """Compress ``data`` (whose hash, if known, is ``digest``): against ``base``
    (whose hash and depth are given) when allowed, else on its own."""
    digest = digest or content_hash(data)
    if (
        base is not None
        and base_hash is not None
        and base_depth < MAX_DEPTH
        and 0 < len(base) <= MAX_DELTA_BASE
        and data
    ):
        delta = _compress_against(data, base)
        return StoredContent(digest, len(data), base_hash, base_depth + 1, delta)
    return StoredContent(digest, len(data), None, 0, _FULL.compress(data))


def _compress_against(data: bytes, base: bytes) -> bytes:
    # The window must reach back over the whole base, and for large bases the
    # match finder needs a table big enough to find matches in it.
    window_log = max(10, min(_MAX_WINDOW_LOG, (len(base) + len(data)).bit_length()))
    default = zstandard.ZstdCompressionParameters.from_level(
        LEVEL, source_size=len(data), dict_size=len(base)
    )
    hash_log = max(default.hash_log, min(_MAX_HASH_LOG, len(base).bit_length() - 1))
    params = zstandard.ZstdCompressionParameters.from_level(
        LEVEL,
        source_size=len(data),
        dict_size=len(base),
        window_log=window_log,
        hash_log=hash_log,
    )
    dictionary = zstandard.ZstdCompressionDict(base, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
    compressor = zstandard.ZstdCompressor(dict_data=dictionary, compression_params=params)
    return compressor.compress(data)


def decode(stored: StoredContent, base: bytes | None) -> bytes:
    """The bytes of ``stored`` (its decoded ``base`` given when it has one),
    checked against its hash."""
    try:
        if stored.base is None:
            data = zstandard.ZstdDecompressor().decompress(stored.data, max_output_size=stored.size)
        else:
            if base is None:
                raise ContentCorrupt(stored.hash, f"its base {stored.base} is missing")
            dictionary = zstandard.ZstdCompressionDict(
                base, dict_type=zstandard.DICT_TYPE_RAWCONTENT
            )
            decompressor = zstandard.ZstdDecompressor(
                dict_data=dictionary, max_window_size=1 << _MAX_WINDOW_LOG
            )
            data = decompressor.decompress(stored.data, max_output_size=stored.size)
    except zstandard.ZstdError as exc:
        raise ContentCorrupt(stored.hash, str(exc)) from exc
    if len(data) != stored.size or content_hash(data) != stored.hash:
        raise ContentCorrupt(stored.hash, "its bytes do not match its hash")
    return data


def decode_chain(chain: Sequence[StoredContent], known: MutableMapping[str, bytes]) -> bytes:
    """Decode ``chain`` (a content, then its base, its base's base, ... down to a
    full copy or to one already in ``known``), adding every decoded content to
    ``known``. Returns the bytes of ``chain[0]``."""
    if not chain:
        raise ValueError("an empty chain holds no content")
    start = len(chain)
    for index, stored in enumerate(chain):
        if stored.hash in known:
            start = index
            break
    if start == len(chain) and chain[-1].base is not None:
        raise ContentCorrupt(chain[-1].hash, f"its base {chain[-1].base} is missing")
    below: bytes | None = known[chain[start].hash] if start < len(chain) else None
    for stored in reversed(chain[:start]):
        below = decode(stored, below)
        known[stored.hash] = below
    assert below is not None
    return below
