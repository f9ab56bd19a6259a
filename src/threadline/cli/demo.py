"""``threadline demo``: a realistic coding-agent session recorded through a writer.

The agent is asked to fix a failing login test. It runs the test, reads a file
that the refactor moved (a tool error), reads the right one, then goes wrong:
it edits the *test* to pass. The user rejects that, the thread is truncated
back to before the wrong edit, and the agent retries and fixes the code. Every
assistant message carries its token usage, model and cost.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from pydantic import JsonValue

from threadline.deltas import head_of
from threadline.model import Message, Thread, ThreadHead, ToolCall, ToolResult, Usage
from threadline.store import ThreadStore

MODEL = "claude-sonnet-4-5"
# USD per million tokens: input, output, cache read, cache write.
PRICE_PER_MTOK = (3.00, 15.00, 0.30, 3.75)


@dataclass(frozen=True)
class DemoSession:
    """What the demo recorded: the final thread, its head (all-time totals) and
    the truncate it made."""

    thread: Thread
    head: ThreadHead
    truncated_at_version: int
    dropped_messages: int
    location: str

    @property
    def visible_head(self) -> ThreadHead:
        """The head folded from the visible messages only (what they cost)."""
        return head_of(self.thread)


def usage(
    input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0
) -> Usage:
    """Usage of one response, priced at :data:`PRICE_PER_MTOK`."""
    tokens = (input_tokens, output_tokens, cache_read, cache_write)
    cost = sum(n * price for n, price in zip(tokens, PRICE_PER_MTOK, strict=True)) / 1_000_000
    return Usage(
        model=MODEL,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cost_usd=round(cost, 6),
    )


class _Agent:
    """Builds the session's messages; tool call ids are unique within the thread."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.last_call: ToolCall | None = None

    def says(
        self, content: str, spent: Usage, tool: str | None = None, **args: JsonValue
    ) -> Message:
        calls: tuple[ToolCall, ...] = ()
        if tool is not None:
            self.last_call = ToolCall(id=f"toolu_{next(self._ids):02d}", name=tool, input=args)
            calls = (self.last_call,)
        return Message(role="assistant", content=content, tool_calls=calls, usage=spent)

    def result(self, output: str, *, is_error: bool = False) -> Message:
        """The tool's answer to the last call, as the next user-role message."""
        assert self.last_call is not None
        outcome = ToolResult(tool_call_id=self.last_call.id, output=output, is_error=is_error)
        return Message(role="user", tool_results=(outcome,))


PYTEST = "pytest tests/test_login.py -q"
TESTS_PASS = "..                                                [100%]\n2 passed in {seconds}s"
LOGIN_PY = """\
def login(email: str, password: str) -> Session:
    user = users.get(email)
    if user is None or not verify(password, user.password_hash):
        raise Unauthorized()
    return Session.start(user)"""


async def record_demo_session(store: ThreadStore) -> DemoSession:
    """Record the session into ``store`` through one writer; return what was written."""
    thread = await store.create_thread(metadata={"source": "threadline demo", "agent": "demo"})
    agent = _Agent()
    writer = await store.acquire_writer(thread.id)
    try:
        await writer.append(
            Message(
                role="system",
                content="You are a coding agent in the acme-web repository (Python 3.11, "
                "pytest). Use the tools to read and edit files and to run commands. "
                "Keep changes minimal.",
            )
        )
        await writer.append(
            Message(
                role="user",
                content="test_login_with_email has failed since yesterday's auth refactor. "
                "Can you find out why and fix it?",
            )
        )
        await writer.modify(lambda t: t.with_title("Fix failing test_login_with_email"))
        await writer.append(
            agent.says(
                "Let me reproduce the failure first.",
                usage(2_180, 64, 0, 5_600),
                "bash",
                command=PYTEST,
            )
        )
        await writer.append(
            agent.result(
                "F.                                                 [100%]\n"
                "FAILED tests/test_login.py::test_login_with_email - assert 401 == 200\n"
                "1 failed, 1 passed in 0.41s"
            )
        )
        await writer.append(
            agent.says(
                "The endpoint answers 401 for a valid user. Reading the login handler.",
                usage(310, 58, 7_780),
                "read_file",
                path="src/acme/auth.py",
            )
        )
        await writer.append(
            agent.result("No such file or directory: src/acme/auth.py", is_error=True)
        )
        await writer.append(
            agent.says(
                "The refactor moved that module into a package; reading the new location.",
                usage(120, 49, 8_150),
                "read_file",
                path="src/acme/auth/login.py",
            )
        )
        await writer.append(agent.result(LOGIN_PY))

        # The wrong turn: the agent makes the test pass by weakening the test.
        wrong_from = len(writer.thread.messages)
        await writer.append(
            agent.says(
                "The test logs in as `Alice@Example.com` but the fixture stores "
                "`alice@example.com`. I'll make the test use the stored spelling.",
                usage(420, 131, 8_390),
                "edit_file",
                path="tests/test_login.py",
                old_string='"Alice@Example.com"',
                new_string='"alice@example.com"',
            )
        )
        await writer.append(agent.result("Edited tests/test_login.py (1 replacement)"))
        await writer.append(
            agent.says("Running the tests again.", usage(95, 40, 8_960), "bash", command=PYTEST)
        )
        await writer.append(agent.result(TESTS_PASS.format(seconds="0.39")))
        await writer.append(
            agent.says(
                "Done: the test now uses the fixture's spelling and both login tests pass.",
                usage(80, 38, 9_100),
            )
        )
        # The user rejects it: back to before the wrong edit, then retry with guidance.
        dropped = len(writer.thread.messages) - wrong_from
        truncated = await writer.truncate(wrong_from)
        await writer.append(
            Message(
                role="user",
                content="Keep the test as it is: people type their email in any case, so "
                "mixed-case logins must work. Fix the lookup in the code instead.",
            )
        )
        await writer.append(
            agent.says(
                "Since the refactor `login()` looks the user up with the email exactly as "
                "typed, but users are stored under the lowercased address. I'll normalise "
                "the email before the lookup.",
                usage(510, 162, 8_390, 600),
                "edit_file",
                path="src/acme/auth/login.py",
                old_string="users.get(email)",
                new_string="users.get(email.strip().lower())",
            )
        )
        await writer.append(agent.result("Edited src/acme/auth/login.py (1 replacement)"))
        await writer.append(
            agent.says("Running the login tests.", usage(90, 41, 9_110), "bash", command=PYTEST)
        )
        await writer.append(agent.result(TESTS_PASS.format(seconds="0.40")))
        final = await writer.append(
            agent.says(
                "Fixed: `login()` lowercases and trims the email before the lookup again, "
                "as it did before the refactor. Both login tests pass; the test is unchanged.",
                usage(70, 52, 9_300),
            )
        )
    finally:
        await writer.dispose()
    page = await store.load_thread(thread.id, limit=0)
    return DemoSession(
        thread=final,
        head=page.head,
        truncated_at_version=truncated.v,
        dropped_messages=dropped,
        location=store.recorder.location,
    )
