"""The embedded server's storage: one SQLite file per workspace, and a token file.

``<dir>/workspaces/<workspace>.db`` holds one workspace's threads (a plain
:class:`~threadline.recorders.sqlite.SqliteRecorder`, so tenancy is a file
boundary); ``<dir>/tokens.db`` holds the tokens. Workspace names are checked
(letters, digits, ``.``, ``_``, ``-``), so they are safe as file names. One
server process per directory: the SQLite recorder's single writer thread is
what gives its change feed commit order.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from threadline.auth import TokenRecord, check_workspace
from threadline.errors import StoreClosed
from threadline.recorders.sqlite import SqliteRecorder
from threadline.recorders.workspaces import Workspaces

_TOKENS = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    secret_hash BLOB NOT NULL,
    user_name TEXT NOT NULL,
    workspace TEXT NOT NULL,
    created INTEGER NOT NULL
)
"""


class SqliteWorkspaces(Workspaces):
    """Workspaces as SQLite files under one directory."""

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self.directory = Path(directory)
        (self.directory / "workspaces").mkdir(parents=True, exist_ok=True)
        self._tokens_path = self.directory / "tokens.db"
        with self._tokens() as conn:
            conn.execute(_TOKENS)
        self._recorders: dict[str, SqliteRecorder] = {}
        self._opening = asyncio.Lock()
        self._closed = False

    @property
    def location(self) -> str:
        return str(self.directory)

    def _tokens(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._tokens_path, timeout=10)
        conn.execute("PRAGMA journal_mode = WAL")
        return conn

    async def recorder(self, workspace: str) -> SqliteRecorder:
        if self._closed:
            raise StoreClosed()
        found = self._recorders.get(workspace)
        if found is not None:
            return found
        path = self.directory / "workspaces" / f"{check_workspace(workspace)}.db"
        async with self._opening:
            found = self._recorders.get(workspace)
            if found is None:
                found = await asyncio.to_thread(SqliteRecorder, path)
                self._recorders[workspace] = found
        return found

    async def add_token(self, record: TokenRecord) -> None:
        def write() -> None:
            with self._tokens() as conn:
                conn.execute(
                    "INSERT INTO tokens VALUES (?, ?, ?, ?, ?)",
                    (
                        record.token_id,
                        record.secret_hash,
                        record.user,
                        record.workspace,
                        record.created,
                    ),
                )
            conn.close()

        await asyncio.to_thread(write)

    async def find_token(self, token_id: str) -> TokenRecord | None:
        def read() -> TokenRecord | None:
            conn = self._tokens()
            try:
                row = conn.execute(
                    "SELECT secret_hash, user_name, workspace, created FROM tokens WHERE id = ?",
                    (token_id,),
                ).fetchone()
            finally:
                conn.close()
            return None if row is None else TokenRecord(token_id, row[0], row[1], row[2], row[3])

        return await asyncio.to_thread(read)

    async def list_tokens(self) -> list[TokenRecord]:
        def read() -> list[TokenRecord]:
            conn = self._tokens()
            try:
                rows = conn.execute(
                    "SELECT id, secret_hash, user_name, workspace, created FROM tokens "
                    "ORDER BY created, id"
                ).fetchall()
            finally:
                conn.close()
            return [TokenRecord(*row) for row in rows]

        return await asyncio.to_thread(read)

    async def revoke_token(self, token_id: str) -> bool:
        def delete() -> bool:
            with self._tokens() as conn:
                deleted = conn.execute("DELETE FROM tokens WHERE id = ?", (token_id,)).rowcount
            conn.close()
            return deleted == 1

        return await asyncio.to_thread(delete)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for recorder in self._recorders.values():
            await recorder.close()
