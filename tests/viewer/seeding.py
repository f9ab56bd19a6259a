"""The threads the viewer tests look at, written through the library's store.

Workspace ``team-a`` holds a thread with tool calls, usage, a file change,
a sub-agent and a summary; a thread of hostile markdown; a long thread (three
pages); and an archived one. Workspace ``team-b`` holds one thread that
``team-a`` must not reach.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from threadline.auth import create_token
from threadline.ids import now_ms
from threadline.model import Message, ToolCall, ToolResult, Usage
from threadline.recorders.sqlite_workspaces import SqliteWorkspaces
from threadline.store import ThreadStore

MAIN = "T-main"
XSS = "T-xss"
LONG = "T-long"
ARCHIVED = "T-archived"
OTHER = "T-other"
LONG_MESSAGES = 120
OLD_CONTENT = "def login(user):\n    return False\n"
NEW_CONTENT = "def login(user):\n    return user.password_ok\n"

HOSTILE = (
    "<script>alert(1)</script>",
    "[click me](javascript:alert(1))",
    "[shout](JAVASCRIPT:alert(2))",
    "[entity](javascript&#58;alert(3))",
    "[tabbed](<java\tscript:alert(4)>)",
    "<javascript:alert(5)>",
    "![picture](javascript:alert(6))",
    '<img src="x" onerror="alert(7)">',
    "[data](data:text/html;base64,PHNjcmlwdD5hbGVydCg4KTwvc2NyaXB0Pg==)",
    "[safe link](https://example.com/ok)",
)


@dataclass(frozen=True)
class Seeded:
    token_a: str
    token_b: str
    sub: str
    summary: str


async def seed(storage: SqliteWorkspaces, workdir: Path) -> Seeded:
    """Fill ``storage`` (the files of ``workdir`` are the main thread's working tree)."""
    token_a = await create_token(storage, "alice", "team-a")
    token_b = await create_token(storage, "bob", "team-b")
    store = ThreadStore(
        await storage.recorder("team-a"), cold_storage=str(workdir / "cold"), restore_on_read=False
    )
    now = now_ms()

    def make_worktree() -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "auth.py").write_text(OLD_CONTENT)

    await asyncio.to_thread(make_worktree)
    await store.create_thread(
        id=MAIN,
        title="Fix the login bug",
        env={"cwd": str(workdir), "git_branch": "fix-login"},
        capture_environment=False,
        created=now - 60_000,
        messages=[
            Message(
                id="m-prompt",
                role="user",
                content="Please fix the **login** bug in `auth.py`; see [the docs](https://example.com/docs).",
                timestamp=now - 50_000,
            ),
            Message(
                id="m-read",
                role="assistant",
                content="I will read the file first.",
                tool_calls=(
                    ToolCall(id="toolu_read", name="Read", input={"file_path": "auth.py"}),
                ),
                usage=Usage(
                    model="claude-sonnet-4", input_tokens=1200, output_tokens=80, cost_usd=0.0123
                ),
                timestamp=now - 40_000,
            ),
            Message(
                id="m-read-result",
                role="user",
                tool_results=(ToolResult(tool_call_id="toolu_read", output=OLD_CONTENT),),
                timestamp=now - 35_000,
            ),
            Message(
                id="m-edit",
                role="assistant",
                content="The check ignores the password. Fixing it.",
                tool_calls=(
                    ToolCall(
                        id="toolu_edit",
                        name="Edit",
                        input={
                            "file_path": "auth.py",
                            "old_string": "return False",
                            "new_string": "return user.password_ok",
                        },
                    ),
                ),
                usage=Usage(
                    model="claude-sonnet-4", input_tokens=1500, output_tokens=120, cost_usd=0.02
                ),
                timestamp=now - 30_000,
            ),
        ],
    )
    await store.record_file_change(
        MAIN, "toolu_edit", path="auth.py", type="modify", new_content=NEW_CONTENT
    )
    await store.append_message(
        MAIN,
        Message(
            id="m-edit-result",
            role="user",
            tool_results=(ToolResult(tool_call_id="toolu_edit", output="edited auth.py"),),
            timestamp=now - 25_000,
        ),
    )
    sub = await store.spawn_subagent_thread(MAIN, "find every caller of login")
    await store.append_message(
        sub.id,
        Message(role="assistant", content="Two callers: `views.py` and `api.py`."),
    )
    summary = await store.create_summary_thread(MAIN, "Fixed the password check in auth.py.")
    await store.append_message(
        MAIN,
        Message(
            id="m-done",
            role="assistant",
            content="Done: `login` now checks the password.\n\n| file | change |\n|---|---|\n"
            "| auth.py | password check |",
            usage=Usage(model="claude-sonnet-4", input_tokens=1800, output_tokens=60),
            timestamp=now - 20_000,
        ),
    )

    await store.create_thread(
        id=XSS,
        title="<script>alert('title')</script>",
        capture_environment=False,
        messages=[
            Message(id=f"m-hostile-{n}", role="user", content=text, timestamp=now - 10_000 + n)
            for n, text in enumerate(HOSTILE)
        ]
        + [
            Message(
                id="m-hostile-tool",
                role="assistant",
                tool_calls=(
                    ToolCall(
                        id="toolu_hostile",
                        name="<b>Bash</b>",
                        input={"command": "</pre><script>alert(9)</script>"},
                    ),
                ),
                timestamp=now - 9_000,
            ),
            Message(
                id="m-hostile-result",
                role="user",
                tool_results=(
                    ToolResult(tool_call_id="toolu_hostile", output="<script>alert(10)</script>"),
                ),
                timestamp=now - 8_900,
            ),
        ],
    )

    await store.create_thread(
        id=LONG,
        title="A long session",
        capture_environment=False,
        created=now - 3_600_000,
        messages=[
            Message(
                id=f"m-long-{n:03d}",
                role="user" if n % 2 == 0 else "assistant",
                content=f"Message number {n} of the long session.",
                timestamp=now - 3_600_000 + n * 1000,
            )
            for n in range(LONG_MESSAGES)
        ],
    )

    old = now - 60 * 86_400_000
    await store.create_thread(
        id=ARCHIVED,
        title="An old archived session",
        capture_environment=False,
        created=old,
        messages=[Message(role="user", content="Long ago.", timestamp=old)],
    )
    await store.archive_thread(ARCHIVED)

    other = ThreadStore(await storage.recorder("team-b"))
    await other.create_thread(
        id=OTHER,
        title="Team B only",
        capture_environment=False,
        messages=[Message(role="user", content="A secret of team b.")],
    )
    return Seeded(token_a=token_a, token_b=token_b, sub=sub.id, summary=summary.id)
