"""``ThreadStore.doctor``: what each check finds, and what ``repair`` fixes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.test_archive import interrupted_archive, make_store, make_thread, spawn
from threadline.deltas import ChildLinkDelta


def tamper(db: Path, sql: str, *args: object) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql, args)


async def test_a_clean_store_has_no_findings(tmp_path: Path) -> None:
    async with make_store("sqlite-file", tmp_path) as store:
        parent = await make_thread(store, "parent")
        await spawn(store, parent, "child")
        await store.archive_thread(await make_thread(store, "cold"))
        report = await store.doctor()
    assert (report.active_threads, report.archived_threads, report.objects) == (2, 1, 1)
    assert report.findings == []
    assert report.clean


async def test_a_head_that_disagrees_with_its_log_is_found_and_rebuilt(tmp_path: Path) -> None:
    async with make_store("sqlite-file", tmp_path) as store:
        thread_id = await make_thread(store, "right title", messages=3)
        before = await store.get_thread(thread_id)
        head = await store.recorder.head(thread_id)
        assert head is not None
        wrong = head.model_copy(update={"title": "wrong", "message_count": 9})
        wrong = wrong.model_copy(update={"totals": wrong.totals.model_copy(update={"cost_usd": 5})})
        tamper(tmp_path / "t.db", "UPDATE threads SET head = ?", wrong.model_dump_json().encode())
        tamper(tmp_path / "t.db", "DELETE FROM messages WHERE pos = 0")

        found = await store.doctor()
        repaired = await store.doctor(repair=True)
        after = await store.doctor()

        assert [(f.check, f.subject) for f in found.problems] == [
            ("head", thread_id),
            ("totals", thread_id),
            ("messages", thread_id),
        ]
        assert "head differs from the log in title, message_count" in found.problems[0].detail
        assert [f.repaired for f in repaired.findings] == [True, True, True]
        assert repaired.clean
        assert after.findings == []
        assert await store.get_thread(thread_id) == before


async def test_a_wrong_link_is_a_problem_and_a_deleted_sub_agent_a_note(tmp_path: Path) -> None:
    async with make_store("sqlite-file", tmp_path) as store:
        parent = await make_thread(store, "parent")
        other = await make_thread(store, "other")
        gone = await spawn(store, parent, "deleted later")
        stranger = await make_thread(store, "someone else's child", parent_thread_id=other)
        head = await store.recorder.head(parent)
        assert head is not None
        await store.append_deltas(parent, head.v, [ChildLinkDelta(thread_id=stranger)])
        await store.delete_thread(gone)

        report = await store.doctor(repair=True)

    assert len(report.findings) == 2
    assert {(f.check, f.subject, f.detail, f.severity) for f in report.findings} == {
        ("link", parent, f"sub-agent thread {gone} no longer exists", "note"),
        ("link", parent, f"lists sub-agent thread {stranger}, whose parent is {other}", "problem"),
    }
    assert [f.subject for f in report.problems] == [parent]


async def test_an_unfinished_operation_is_found_noted_while_running_and_repaired(
    tmp_path: Path,
) -> None:
    async with make_store("sqlite-file", tmp_path) as store:
        thread_id = await make_thread(store, "half archived")
        op = await interrupted_archive(store, thread_id, put=False)
        lease = store.recorder.acquire_lease(thread_id)
        running = await store.doctor(repair=True)
        lease.release()
        found = await store.doctor()
        repaired = await store.doctor(repair=True)

    assert [(f.check, f.severity) for f in running.findings] == [("pending", "note")]
    assert f"archive op {op.id} is running elsewhere" in running.findings[0].detail
    assert [(f.check, f.severity, f.repaired) for f in found.findings] == [
        ("pending", "problem", False)
    ]
    assert [(f.detail, f.repaired) for f in repaired.findings] == [
        (f"undid the interrupted archive of {thread_id}: it stays active", True)
    ]
