"""A backend has a storage role or does not: the type checker refuses a call
to a role the backend lacks, and a ThreadStore over such a backend raises
RoleUnavailable (naming the role and the backend) for the operations that
need it, while everything the backend's roles serve keeps working."""

from pathlib import Path
from textwrap import dedent

import pytest
from mypy import api as mypy_api

from tests.pg import make_token, new_workspace
from threadline import Message, RoleUnavailable, ThreadNotFound, ThreadStore
from threadline.recorders import MemoryRecorder
from threadline.recorders.roles import ArchiveLedger, FileLog, file_log
from threadline.sync.client import RemoteRecorder


@pytest.fixture
async def remote_store(live_server: str, postgres_dsn: str) -> ThreadStore:
    token = await make_token(postgres_dsn, new_workspace())
    return ThreadStore(RemoteRecorder(live_server, token))


async def test_a_store_over_the_http_client_serves_the_roles_the_client_has(
    remote_store: ThreadStore,
) -> None:
    store = remote_store
    try:
        thread = await store.create_thread(title="remote roles", capture_environment=False)
        await store.append_message(thread.id, Message(role="user", content="hello roles"))
        child = await store.spawn_subagent_thread(thread.id, "look around")
        assert [m.content for m in (await store.get_thread(thread.id)).messages] == ["hello roles"]
        listed = await store.list_threads()  # archived ones included: there are none here
        assert {h.id for h in listed.threads} == {thread.id, child.id}
        assert {hit.thread_id for hit in await store.search("hello")} == {thread.id}
        tree = await store.get_thread_tree(thread.id)
        assert [node.id for node in tree.nodes] == [thread.id, child.id]
        assert (await store.cost_report(thread.id)).thread_id == thread.id
        assert await store.recover() == []
        with pytest.raises(ThreadNotFound):
            await store.get_thread("T-missing")  # not archived here: simply missing
    finally:
        await store.close()


async def test_a_store_over_the_http_client_refuses_file_tracking_and_archiving(
    remote_store: ThreadStore,
) -> None:
    store = remote_store
    try:
        thread = await store.create_thread(capture_environment=False)
        with pytest.raises(RoleUnavailable) as files:
            await store.file_changes(thread.id)
        assert (files.value.role, files.value.backend) == ("FileLog", "RemoteRecorder")
        assert "File change tracking needs a FileLog" in str(files.value)
        with pytest.raises(RoleUnavailable) as archive:
            await store.archive_thread(thread.id)
        assert (archive.value.role, archive.value.backend) == ("ArchiveLedger", "RemoteRecorder")
        with pytest.raises(RoleUnavailable):
            await store.archived_thread(thread.id)
        assert (await store.get_thread(thread.id)).id == thread.id  # nothing was done
    finally:
        await store.close()


def test_narrowing_to_a_role_returns_the_same_backend() -> None:
    memory = MemoryRecorder()
    assert file_log(memory) is memory
    assert isinstance(memory, ArchiveLedger)
    assert isinstance(memory, FileLog)


def test_the_type_checker_refuses_a_role_the_backend_lacks(tmp_path: Path) -> None:
    """A service or a contract suite that uses a role on a backend without it
    is a type error (this runs mypy --strict on such code)."""
    snippet = tmp_path / "uses_roles.py"
    snippet.write_text(
        dedent(
            """
            from tests.contract.filelog_suite import FileLogContract
            from tests.contract.test_remote import RemoteBackend
            from threadline.files.tracking import FileTracker
            from threadline.sync.client import RemoteRecorder


            class TestRemoteFileLog(RemoteBackend, FileLogContract):  # a role it lacks
                pass


            async def misuse(remote: RemoteRecorder) -> None:
                await remote.record_file_changes("T-1", [], [])
                await remote.commit_archive("op", [])
                FileTracker(remote)
                await remote.subtree("T-1")  # a role it has: no error
            """
        )
    )
    out, _, status = mypy_api.run(
        ["--strict", "--no-incremental", "--follow-imports=silent", str(snippet)]
    )
    errors = [line.split(": error: ", 1)[1] for line in out.splitlines() if ": error: " in line]
    assert errors == [
        'Definition of "make_recorder" in base class "RemoteBackend" is incompatible with '
        'definition in base class "FileLogContract"  [misc]',
        '"RemoteRecorder" has no attribute "record_file_changes"  [attr-defined]',
        '"RemoteRecorder" has no attribute "commit_archive"  [attr-defined]',
        'Argument 1 to "FileTracker" has incompatible type "RemoteRecorder"; '
        'expected "FileLog"  [arg-type]',
    ]
    assert status == 1
