"""The server's token cache (:class:`threadline.auth.TokenCache`): a valid token
is checked against the database once per period, an invalid one every time."""

from __future__ import annotations

from pathlib import Path

from threadline.auth import CACHE_SECONDS, Principal, TokenCache, TokenRecord, create_token
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces


class CountingStorage(SqliteWorkspaces):
    """The embedded server storage, counting its token lookups."""

    lookups = 0

    async def find_token(self, token_id: str) -> TokenRecord | None:
        self.lookups += 1
        return await super().find_token(token_id)


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_valid_token_is_looked_up_once_per_period(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path)
    try:
        token = await create_token(storage, "alice", "team")
        clock = Clock()
        cache = TokenCache(seconds=30, clock=clock)
        first = await cache.authenticate(storage, token)
        assert first == Principal(user="alice", workspace="team", token_id=token[3:15])
        clock.now += 29
        assert await cache.authenticate(storage, token) == first
        assert storage.lookups == 1
        clock.now += 2  # past the period: checked again
        assert await cache.authenticate(storage, token) == first
        assert storage.lookups == 2
    finally:
        await storage.close()


async def test_an_invalid_token_is_checked_every_time(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path)
    try:
        token = await create_token(storage, "alice", "team")
        cache = TokenCache(clock=Clock())
        assert await cache.authenticate(storage, token) is not None
        wrong_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
        for _ in range(3):
            assert await cache.authenticate(storage, wrong_secret) is None
        assert storage.lookups == 4
        unknown = "tl_000000000000_" + "A" * 43
        assert await cache.authenticate(storage, unknown) is None
        assert storage.lookups == 5
    finally:
        await storage.close()


async def test_a_full_cache_starts_over(tmp_path: Path) -> None:
    storage = CountingStorage(tmp_path)
    try:
        tokens = [await create_token(storage, f"user{n}", "team") for n in range(3)]
        cache = TokenCache(size=2, clock=Clock())
        for token in tokens:
            assert await cache.authenticate(storage, token) is not None
        assert storage.lookups == 3
        assert await cache.authenticate(storage, tokens[2]) is not None  # kept
        assert await cache.authenticate(storage, tokens[0]) is not None  # dropped
        assert storage.lookups == 4
    finally:
        await storage.close()


async def test_a_revoked_token_is_refused_once_its_entry_expires(tmp_path: Path) -> None:
    assert CACHE_SECONDS < 1  # issue 16: every server process refuses it within a second
    storage = CountingStorage(tmp_path)
    try:
        token = await create_token(storage, "alice", "team")
        clock = Clock()
        cache = TokenCache(clock=clock)
        assert await cache.authenticate(storage, token) is not None
        assert await storage.revoke_token(token[3:15]) is True
        assert await storage.revoke_token(token[3:15]) is False
        clock.now += CACHE_SECONDS + 0.01
        assert await cache.authenticate(storage, token) is None
        assert await storage.list_tokens() == []
    finally:
        await storage.close()
