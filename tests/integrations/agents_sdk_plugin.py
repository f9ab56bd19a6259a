"""A pytest plugin that runs the OpenAI Agents SDK's own session tests on
:class:`~threadline.integrations.openai_agents.ThreadlineSession`: it puts a
``SQLiteSession`` of the same constructor, backed by threadline, in the SDK's
place before the tests import it. Nothing of the SDK is copied here; the tests
come from its sdist (see docs/openai-agents.md for the command)::

    pip download --no-binary :all: --no-deps openai-agents==0.24.0
    tar xzf openai_agents-0.24.0.tar.gz && cd openai_agents-0.24.0
    PYTHONPATH=<threadline>/tests/integrations pytest -p agents_sdk_plugin \\
        tests/memory/test_session.py tests/memory/test_session_limit.py
"""

from os import PathLike
from typing import Any

import agents
import agents.memory
import agents.memory.sqlite_session

from threadline.integrations.openai_agents import ThreadlineSession


class SQLiteSession(ThreadlineSession):
    """ThreadlineSession under SQLiteSession's constructor (a threadline store
    at ``db_path``; the table names have no meaning here)."""

    def __init__(
        self,
        session_id: str,
        db_path: str | PathLike[str] = ":memory:",
        sessions_table: str = "agent_sessions",
        messages_table: str = "agent_messages",
        session_settings: Any = None,
    ) -> None:
        super().__init__(session_id, db_path, session_settings=session_settings)
        self.db_path = db_path


agents.SQLiteSession = SQLiteSession  # type: ignore[misc,assignment]
agents.memory.SQLiteSession = SQLiteSession  # type: ignore[misc,assignment]
agents.memory.sqlite_session.SQLiteSession = SQLiteSession  # type: ignore[misc,assignment]
