"""Bearer tokens of the sync server: made once, stored hashed, checked in constant time.

A token reads ``tl_<id>_<secret>``. The id (12 hex digits) finds the stored
record; the secret (32 random bytes, URL-safe base64) is never stored, only
its SHA-256, which :func:`authenticate` compares with :func:`hmac.compare_digest`.
A slow password hash is not needed: the secret has 256 bits of entropy, so
nobody can guess it from its hash. A token belongs to one user in one
workspace, and that workspace is the only one its requests can touch.
"""

from __future__ import annotations

import abc
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from threadline.ids import now_ms

_TOKEN = re.compile(r"tl_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
WORKSPACE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_WORKSPACE = re.compile(WORKSPACE_PATTERN)
_USER = re.compile(r"[^\x00-\x1f\x7f]{1,200}")

# Compared against when the id is unknown, so that an unknown id costs as much
# as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"threadline: no such token").digest()


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """What the server keeps of a token: never the secret, only its hash."""

    token_id: str
    secret_hash: bytes
    user: str
    workspace: str
    created: int


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request is from: the token's user and workspace."""

    user: str
    workspace: str
    token_id: str


class TokenStore(abc.ABC):
    """Where a server keeps its :class:`TokenRecord` s (its database)."""

    @abc.abstractmethod
    async def add_token(self, record: TokenRecord) -> None:
        """Store a new token's record."""

    @abc.abstractmethod
    async def find_token(self, token_id: str) -> TokenRecord | None:
        """The record of ``token_id``, or ``None``."""

    @abc.abstractmethod
    async def list_tokens(self) -> list[TokenRecord]:
        """Every token's record, oldest first."""

    @abc.abstractmethod
    async def revoke_token(self, token_id: str) -> bool:
        """Forget ``token_id`` for good (its requests are refused from then on, by
        every server process within :data:`CACHE_SECONDS`); whether it existed."""


def check_workspace(workspace: str) -> str:
    """``workspace`` if it is a valid name (letters, digits, ``.``, ``_``, ``-``;
    at most 64; starting with a letter or digit), else :class:`ValueError`."""
    if not _WORKSPACE.fullmatch(workspace):
        raise ValueError(
            f"Invalid workspace name {workspace!r}: use 1 to 64 letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return workspace


def check_user(user: str) -> str:
    if not _USER.fullmatch(user):
        raise ValueError(f"Invalid user name {user!r}: use 1 to 200 printable characters")
    return user


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_token(user: str, workspace: str) -> tuple[str, TokenRecord]:
    """A new token (to show once) and the record to store."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = TokenRecord(
        token_id=token_id,
        secret_hash=hash_secret(secret),
        user=check_user(user),
        workspace=check_workspace(workspace),
        created=now_ms(),
    )
    return f"tl_{token_id}_{secret}", record


async def create_token(store: TokenStore, user: str, workspace: str) -> str:
    """Make and store a token for ``user`` in ``workspace``; returns it (shown once)."""
    token, record = new_token(user, workspace)
    await store.add_token(record)
    return token


def verify(record: TokenRecord | None, secret: str) -> bool:
    """Whether ``secret`` is the secret of ``record``, in time that does not
    depend on where they differ (nor on whether the record exists)."""
    expected = record.secret_hash if record is not None else _DUMMY_HASH
    matches = hmac.compare_digest(hash_secret(secret), expected)
    return matches and record is not None


def parse_token(token: str) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a well-formed token, else ``None``."""
    found = _TOKEN.fullmatch(token)
    return None if found is None else (found.group(1), found.group(2))


async def authenticate(store: TokenStore, token: str) -> Principal | None:
    """The principal of a presented token, or ``None`` if it is not valid."""
    parts = parse_token(token)
    if parts is None:
        verify(None, token)  # same work as for a wrong secret
        return None
    token_id, secret = parts
    record = await store.find_token(token_id)
    if not verify(record, secret):
        return None
    assert record is not None
    return Principal(user=record.user, workspace=record.workspace, token_id=record.token_id)


CACHE_SECONDS = 0.5
"""How long a server process trusts a token it has checked: a revoked token
(``threadline token revoke``) is refused by every process at most this long
after, whichever database and however many processes."""


class TokenCache:
    """:func:`authenticate` with the answers kept for ``seconds``: a server checks
    each token against its database once per ``seconds``, not once per request.

    Entries are keyed by the token's SHA-256 (the raw token is not kept), and
    only valid tokens are kept: a wrong token is checked again each time. A token
    revoked in the database is refused once its entry expires, so ``seconds``
    bounds how long a revocation takes to reach every server process (issue 16:
    under a second) while a busy client still costs one lookup per period. At
    ``size`` entries it starts over.
    """

    def __init__(
        self,
        seconds: float = CACHE_SECONDS,
        size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._seconds = seconds
        self._size = size
        self._clock = clock
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    async def authenticate(self, store: TokenStore, token: str) -> Principal | None:
        """The principal of ``token`` (from the cache if checked recently), or ``None``."""
        key = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and entry[0] >= now:
            return entry[1]
        principal = await authenticate(store, token)
        if principal is not None:
            if len(self._entries) >= self._size:
                self._entries.clear()
            self._entries[key] = (now + self._seconds, principal)
        return principal
