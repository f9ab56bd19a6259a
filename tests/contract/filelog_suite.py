"""The contract of the :class:`~threadline.recorders.roles.FileLog` role: every
backend that has it stores the file log, its contents (once per hash) and the
rollback journal the same way.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from threadline.deltas import MessageDelta, ThreadCreate
from threadline.errors import (
    ContentMissing,
    InvalidFileChange,
    OperationNotFound,
    StoreClosed,
    ThreadNotFound,
    VersionConflict,
)
from threadline.files.contents import decode_chain, encode
from threadline.files.log import (
    UNKNOWN,
    ContentUsage,
    FileState,
    NewFileChange,
    NewRollback,
    StoredContent,
)
from threadline.model import Message
from threadline.recorders.roles import FileLog

ONE = encode(b"one\n" * 100)
TWO = encode(b"one\n" * 99 + b"two\n", base=b"one\n" * 100, base_hash=ONE.hash, base_depth=0)
THREE = encode(b"three\n")


def state(content: StoredContent, mode: int = 0o644) -> FileState:
    return FileState(hash=content.hash, size=content.size, mode=mode)


def change(
    op: str,
    path: str,
    before: StoredContent | None,
    after: StoredContent | None,
    reverts: tuple[int, ...] = (),
) -> NewFileChange:
    return NewFileChange(
        operation_id=op,
        path=path,
        before=None if before is None else state(before),
        after=None if after is None else state(after),
        reverts=reverts,
    )


class FileLogContract(abc.ABC):
    @abc.abstractmethod
    async def make_recorder(self, tmp_path: Path) -> FileLog:
        """A fresh, empty recorder of the backend under test."""

    @pytest.fixture
    async def recorder(self, tmp_path: Path) -> AsyncIterator[FileLog]:
        recorder = await self.make_recorder(tmp_path)
        await recorder.append("T-1", 0, [ThreadCreate(id="T-1", created=1)])
        yield recorder
        await recorder.close()

    async def test_copied_changes_are_stored_as_they_were_only_after_the_log_they_saw(
        self, recorder: FileLog
    ) -> None:
        source = await recorder.record_file_changes(
            "T-1",
            [change("op-1", "a.txt", None, ONE), change("op-1", "a.txt", ONE, TWO)],
            [ONE, TWO],
        )
        await recorder.append("T-2", 0, [ThreadCreate(id="T-2", created=1)])
        copied = [c.model_copy(update={"thread_id": "T-2", "at": 7}) for c in source]
        four = encode(b"four\n")
        unknown = copied[0].model_copy(update={"after": state(four)})
        with pytest.raises(ContentMissing):
            await recorder.copy_file_changes("T-2", 0, [unknown], [])
        with pytest.raises(InvalidFileChange):
            await recorder.copy_file_changes("T-2", 0, copied[1:], [ONE, TWO])
        assert await recorder.copy_file_changes("T-2", 0, copied[:1], [ONE]) == 1
        with pytest.raises(VersionConflict):
            await recorder.copy_file_changes("T-2", 0, copied[1:], [])
        assert await recorder.copy_file_changes("T-2", 1, copied[1:], [TWO]) == 2
        assert await recorder.file_changes("T-2") == copied
        with pytest.raises(ThreadNotFound):
            await recorder.copy_file_changes("T-none", 0, copied[:1], [])

    async def test_changes_are_numbered_and_stamped_with_the_thread_version(
        self, recorder: FileLog
    ) -> None:
        first = await recorder.record_file_changes(
            "T-1", [change("op-1", "a.txt", None, ONE)], [ONE]
        )
        await recorder.append("T-1", 1, [MessageDelta.of(Message(role="user", content="go"))])
        second = await recorder.record_file_changes(
            "T-1",
            [change("op-2", "a.txt", ONE, TWO), change("op-2", "b.txt", THREE, None)],
            [TWO, THREE],
        )
        assert [(c.seq, c.operation_id, c.type, c.thread_version) for c in first + second] == [
            (1, "op-1", "create", 1),
            (2, "op-2", "modify", 2),
            (3, "op-2", "delete", 2),
        ]
        assert await recorder.file_changes("T-1") == first + second
        assert await recorder.file_changes("T-1", operation_id="op-2") == second
        assert await recorder.file_changes("T-1", since_version=2) == second
        assert await recorder.file_changes("T-none") == []

    async def test_unknown_thread_raises_thread_not_found(self, recorder: FileLog) -> None:
        with pytest.raises(ThreadNotFound):
            await recorder.record_file_changes("T-none", [change("op", "a", None, ONE)], [ONE])
        assert (await recorder.content_usage()).contents == 0

    async def test_each_content_is_stored_once(self, recorder: FileLog) -> None:
        await recorder.record_file_changes("T-1", [change("op-1", "a", None, ONE)], [ONE])
        await recorder.record_file_changes("T-1", [change("op-2", "b", None, ONE)], [ONE])
        usage = await recorder.content_usage()
        assert (usage.contents, usage.stored_bytes, usage.raw_bytes) == (1, len(ONE.data), 400)
        assert await recorder.content_depths([ONE.hash, TWO.hash]) == {ONE.hash: 0}

    async def test_a_change_naming_an_unstored_content_writes_nothing(
        self, recorder: FileLog
    ) -> None:
        with pytest.raises(ContentMissing) as raised:
            await recorder.record_file_changes(
                "T-1", [change("op", "a", None, THREE), change("op", "b", ONE, TWO)], [THREE, TWO]
            )
        assert raised.value.hashes == [ONE.hash]
        assert await recorder.file_changes("T-1") == []
        assert (await recorder.content_usage()).contents == 0

    async def test_a_delta_chain_is_read_down_to_its_full_copy(self, recorder: FileLog) -> None:
        await recorder.record_file_changes(
            "T-1", [change("op", "a", None, ONE), change("op", "a", ONE, TWO)], [ONE, TWO]
        )
        chain = await recorder.content_chain(TWO.hash)
        assert [(c.hash, c.base, c.depth) for c in chain] == [
            (TWO.hash, ONE.hash, 1),
            (ONE.hash, None, 0),
        ]
        assert decode_chain(chain, {}) == b"one\n" * 99 + b"two\n"
        assert await recorder.content_chain("0" * 64) == []

    async def test_reverts_are_followed_transitively(self, recorder: FileLog) -> None:
        await recorder.record_file_changes(
            "T-1",
            [
                change("op", "a", None, ONE),
                change("op", "b", None, THREE),
                change("R-1", "a", ONE, None, reverts=(1,)),
                change("R-2", "a", None, ONE, reverts=(3,)),
                change("R-3", "b", THREE, None, reverts=(2,)),
            ],
            [ONE, THREE],
        )
        assert [c.seq for c in await recorder.file_reverts("T-1", [1])] == [3, 4]
        assert [c.seq for c in await recorder.file_reverts("T-1", [1, 2])] == [3, 4, 5]
        assert await recorder.file_reverts("T-1", [5]) == []
        changes = await recorder.file_changes("T-1")
        assert changes[3].reverts == (3,)

    async def test_latest_change_of_each_path(self, recorder: FileLog) -> None:
        await recorder.record_file_changes(
            "T-1",
            [
                change("op", "a", None, ONE),
                change("op", "b", None, THREE),
                change("op", "a", ONE, TWO),
            ],
            [ONE, TWO, THREE],
        )
        latest = await recorder.latest_file_changes("T-1", ["a", "b", "c"])
        assert {path: c.seq for path, c in latest.items()} == {"a": 3, "b": 2}

    async def test_rollback_journal_opens_with_its_changes_and_finishes(
        self, recorder: FileLog
    ) -> None:
        await recorder.record_file_changes("T-1", [change("op", "a", None, ONE)], [ONE])
        await recorder.record_file_changes(
            "T-1",
            [change("R-1", "a", ONE, None, reverts=(1,))],
            [],
            rollback=NewRollback(operation_id="R-1", undoes_operation="op"),
        )
        [entry] = await recorder.file_rollbacks("T-1", unfinished=True)
        assert (entry.operation_id, entry.undoes_operation, entry.after_message) == (
            "R-1",
            "op",
            None,
        )
        assert entry.finished is None
        await recorder.finish_rollback("T-1", "R-1")
        await recorder.finish_rollback("T-1", "R-1")
        assert await recorder.file_rollbacks("T-1", unfinished=True) == []
        [done] = await recorder.file_rollbacks("T-1")
        assert done.finished is not None
        with pytest.raises(OperationNotFound):
            await recorder.finish_rollback("T-1", "R-none")
        with pytest.raises(InvalidFileChange):
            await recorder.record_file_changes(
                "T-1", [], [], rollback=NewRollback(operation_id="R-1", after_message="M-1")
            )

    async def test_deleting_a_thread_drops_its_file_log_and_unshared_contents(
        self, recorder: FileLog
    ) -> None:
        await recorder.append("T-2", 0, [ThreadCreate(id="T-2", created=2)])
        await recorder.record_file_changes(
            "T-1",
            [change("op", "a", None, ONE), change("op", "a", ONE, TWO)],
            [ONE, TWO],
            rollback=NewRollback(operation_id="op"),
        )
        await recorder.record_file_changes("T-2", [change("op", "b", None, TWO)], [])
        await recorder.record_file_changes("T-2", [change("op", "c", None, THREE)], [THREE])
        assert await recorder.delete("T-1")
        assert await recorder.file_changes("T-1") == []
        assert await recorder.file_rollbacks("T-1") == []
        # TWO is still used by T-2, and ONE as the base TWO is stored against.
        assert (await recorder.content_usage()).contents == 3
        assert await recorder.delete("T-2")
        assert await recorder.content_usage() == ContentUsage(0, 0, 0)

    async def test_contents_not_recorded_are_stored_as_unknown_and_read_back(
        self, recorder: FileLog
    ) -> None:
        # An import's edits of files its transcript never showed: a write over
        # one (before unknown), an edit (both unknown), a delete, a known edit
        # whose result is unknown. They name no content, so none is needed.
        changes = [
            NewFileChange("op-1", "a.txt", UNKNOWN, state(ONE)),
            NewFileChange("op-2", "b.txt", UNKNOWN, UNKNOWN),
            NewFileChange("op-2", "c.txt", UNKNOWN, None),
            NewFileChange("op-3", "d.txt", state(THREE), UNKNOWN),
        ]
        recorded = await recorder.record_file_changes("T-1", changes, [ONE, THREE])
        assert [(c.type, c.before_unknown, c.after_unknown) for c in recorded] == [
            ("modify", True, False),
            ("modify", True, True),
            ("delete", True, False),
            ("modify", False, True),
        ]
        assert [(c.before, c.after) for c in recorded] == [
            (UNKNOWN, state(ONE)),
            (UNKNOWN, UNKNOWN),
            (UNKNOWN, None),
            (state(THREE), UNKNOWN),
        ]
        assert await recorder.file_changes("T-1") == recorded
        latest = await recorder.latest_file_changes("T-1", ["b.txt", "d.txt"])
        assert [latest["b.txt"], latest["d.txt"]] == [recorded[1], recorded[3]]
        assert (await recorder.content_usage()).contents == 2
        # Copied to another thread (what a sync does) they stay unknown, and
        # only their known contents are asked for.
        await recorder.append("T-2", 0, [ThreadCreate(id="T-2", created=1)])
        copied = [c.model_copy(update={"thread_id": "T-2"}) for c in recorded]
        assert await recorder.copy_file_changes("T-2", 0, copied, []) == 4
        assert await recorder.file_changes("T-2") == copied
        assert await recorder.delete("T-1")
        assert await recorder.delete("T-2")
        assert await recorder.content_usage() == ContentUsage(0, 0, 0)

    async def test_closed_recorder_refuses_file_work(self, recorder: FileLog) -> None:
        await recorder.close()
        with pytest.raises(StoreClosed):
            await recorder.file_changes("T-1")
