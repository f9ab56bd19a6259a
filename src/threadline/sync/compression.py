"""Compression of sync request bodies on the wire (``Content-Encoding``).

What travels is already only the deltas the other side lacks
(:func:`threadline.merge.compress`); this module shrinks large bodies further.
A client compresses a body with zstd when it is at least
:data:`MIN_COMPRESSED_BYTES` long, or always when asked (the summary threads'
policy); :class:`DecompressRequests` is the server's ASGI middleware that
undoes ``zstd`` and ``gzip`` request bodies, refusing a body that would
inflate past the server's body limit (415 for an unknown encoding, 400 for a
corrupt body, 413 for one too large). Responses are compressed by the
server's gzip middleware, which httpx undoes by itself.
"""

from __future__ import annotations

import zlib

import orjson
import zstandard
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as AsgiMessage

MIN_COMPRESSED_BYTES = 1024
"""Bodies shorter than this are sent as they are, unless compression is forced."""

_LEVEL = 3
_COMPRESSOR = zstandard.ZstdCompressor(level=_LEVEL)


def encode_body(body: bytes, *, force: bool = False) -> tuple[bytes, dict[str, str]]:
    """The body to send and its extra headers: zstd-compressed with
    ``Content-Encoding: zstd`` if it is large (or ``force``) and compression
    makes it smaller, else as it is."""
    if force or len(body) >= MIN_COMPRESSED_BYTES:
        packed = _COMPRESSOR.compress(body)
        if len(packed) < len(body):
            return packed, {"Content-Encoding": "zstd"}
    return body, {}


class BodyError(ValueError):
    """A request body that cannot be decoded: its HTTP status and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def decode_body(body: bytes, encoding: str, *, max_bytes: int) -> bytes:
    """``body`` decoded from ``encoding`` (``zstd``, ``gzip`` or ``identity``),
    never inflating past ``max_bytes``; :class:`BodyError` otherwise."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    try:
        if encoding == "zstd":
            data = _unzstd(body, max_bytes + 1)
        elif encoding in ("gzip", "x-gzip"):
            data = _ungzip(body, max_bytes + 1)
        else:
            raise BodyError(
                415,
                "unsupported_encoding",
                f"Content-Encoding {encoding!r} is not supported; use zstd, gzip or none",
            )
    except (zstandard.ZstdError, zlib.error) as exc:
        raise BodyError(
            400, "invalid_encoding", f"The {encoding} request body is corrupt: {exc}"
        ) from exc
    if len(data) > max_bytes:
        raise BodyError(
            413, "body_too_large", f"The request body exceeds {max_bytes} bytes once decoded"
        )
    return data


def _ungzip(body: bytes, limit: int) -> bytes:
    """Decode a gzip body of one or more members (RFC 1952: a gzip file is a
    series of members, and decoders concatenate them), stopping after ``limit``
    bytes of output."""
    parts: list[bytes] = []
    size = 0
    rest = body
    while rest and size < limit:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        chunk = inflater.decompress(rest, limit - size)
        parts.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
        if not inflater.eof:
            raise zlib.error("the gzip stream ends early")
        rest = inflater.unused_data
    return b"".join(parts)


def _unzstd(body: bytes, limit: int) -> bytes:
    """Decode a zstd body, stopping after ``limit`` bytes of output."""
    parts: list[bytes] = []
    size = 0
    with zstandard.ZstdDecompressor().stream_reader(body, read_across_frames=True) as reader:
        while size < limit:
            chunk = reader.read(min(65536, limit - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    return b"".join(parts)


class DecompressRequests:
    """ASGI middleware: decode ``Content-Encoding`` request bodies (see module)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        encoding = next((v for k, v in headers if k == b"content-encoding"), None)
        if encoding is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, "body_too_large", "The request body is too large")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        try:
            body = decode_body(
                b"".join(chunks), encoding.decode("latin-1"), max_bytes=self.max_bytes
            )
        except BodyError as exc:
            await _refuse(send, exc.status, exc.code, exc.message)
            return
        kept = [(k, v) for k, v in headers if k not in (b"content-encoding", b"content-length")]
        kept.append((b"content-length", str(len(body)).encode()))
        delivered = False

        async def replay() -> AsgiMessage:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": kept}, replay, send)


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    payload = orjson.dumps({"code": code, "message": message})
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
