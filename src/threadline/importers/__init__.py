"""Importers: other agents' session files → threadline threads.

Each importer parses an agent's own files and writes through
:class:`~threadline.store.ThreadStore`; none holds business rules of its own.
They are idempotent (the agent's ids become thread and message ids) and
return an :class:`ImportReport`.
"""

from threadline.importers.claude_code import import_claude_code
from threadline.importers.codex import import_codex
from threadline.importers.core import ImportReport, MalformedLine
from threadline.importers.exported import import_export
from threadline.importers.openhands import import_openhands, import_openhands_conversation
from threadline.importers.progress import ImportProgress

__all__ = [
    "ImportProgress",
    "ImportReport",
    "MalformedLine",
    "import_claude_code",
    "import_codex",
    "import_export",
    "import_openhands",
    "import_openhands_conversation",
]
