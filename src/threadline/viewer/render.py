"""How the web viewer turns threads into HTML: safe markdown, view models, templates.

Message content is markdown written by people and by models, so it is
untrusted. It is rendered on the server by markdown-it with raw HTML off
(``<script>`` comes out as text), links and images only to ``http``,
``https``, ``mailto`` or relative targets (a ``javascript:`` link stays
text), and images shown as links (no request leaves the page for them).
Everything else reaches the page through Jinja2 with autoescaping on. The
Content-Security-Policy (:mod:`threadline.viewer.session`) is the second line.

Pure presentation: the numbers come from the store (message usage, the cost
report, the file log); nothing here decides anything about a thread.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

import orjson
from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup
from pydantic import JsonValue

from threadline.files.log import FileChange
from threadline.model import Message, ThreadHead, ToolCall, ToolResult, Usage, UsageTotals
from threadline.pricing import price_usage
from threadline.search import SearchHit

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
"""The URL schemes a rendered link or image may have (relative links have none)."""

_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_SCHEME_END = re.compile(r"[/?#]")


def link_allowed(url: str) -> bool:
    """Whether a markdown link may point at ``url``: relative (no scheme before
    the first ``/``, ``?`` or ``#``) or one of :data:`LINK_SCHEMES`. Blanks and
    control characters are ignored first, as browsers ignore them in schemes."""
    cleaned = _CONTROL.sub("", url).lower()
    before_path = _SCHEME_END.split(cleaned, maxsplit=1)[0]
    if ":" not in before_path:
        return True
    return before_path.split(":", 1)[0] in LINK_SCHEMES


class _SafeMarkdown(MarkdownIt):
    def validateLink(self, url: str) -> bool:
        return link_allowed(url)


def _link_open(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return self.renderToken(tokens, idx, options, env)


def _image_as_link(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    source = str(token.attrGet("src") or "")
    alt = self.renderInlineAsText(token.children or [], options, env)
    escaped = Markup.escape
    return (
        f'<a class="image-link" href="{escaped(source)}" rel="nofollow noopener noreferrer">'
        f"image: {escaped(alt or source)}</a>"
    )


_MARKDOWN = _SafeMarkdown("commonmark", {"html": False, "linkify": False, "typographer": False})
_MARKDOWN.enable(["table", "strikethrough"])
_MARKDOWN.add_render_rule("link_open", _link_open)
_MARKDOWN.add_render_rule("image", _image_as_link)


def markdown(text: str) -> Markup:
    """``text`` (markdown) as safe HTML."""
    return Markup(_MARKDOWN.render(text))


# -- small formats --------------------------------------------------------------


def utc_text(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS UTC`` (the page's script shows it in local time)."""
    moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def dollars(amount: float) -> str:
    return f"${amount:,.4f}"


def tokens_text(count: int) -> str:
    return f"{count:,}"


def json_text(value: JsonValue) -> str:
    """A tool output or input as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def first_line(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def url_part(value: str) -> str:
    """``value`` quoted for one path segment or query value."""
    return quote(value, safe="")


def cost_of_totals(totals: UsageTotals) -> str:
    text = dollars(totals.cost_usd)
    if totals.unpriced_messages:
        text += f" (+{totals.unpriced_messages} unpriced)"
    return text


@dataclass(frozen=True)
class DiffLine:
    text: str
    kind: str  # "add", "del", "hunk", "meta" or "ctx"


def diff_lines(diff: str) -> list[DiffLine]:
    """A unified diff as lines classed for colouring."""
    lines: list[DiffLine] = []
    in_header = True
    for text in diff.splitlines():
        if text.startswith("@@"):
            in_header = False
            lines.append(DiffLine(text, "hunk"))
        elif in_header:
            lines.append(DiffLine(text, "meta"))
        elif text.startswith("+"):
            lines.append(DiffLine(text, "add"))
        elif text.startswith("-"):
            lines.append(DiffLine(text, "del"))
        else:
            lines.append(DiffLine(text, "ctx"))
    return lines


# -- view models --------------------------------------------------------------------


SHELL_TOOLS = frozenset(
    {"bash", "shell", "exec_command", "local_shell", "execute_bash", "run_shell_command"}
)
"""Tools (lower-cased names) whose ``command`` input is a shell command line."""
SHORT_LINES = 12
SHORT_CHARS = 2_000
"""A tool's input or output longer than this is folded until opened."""


@dataclass(frozen=True)
class InputView:
    """A tool call's input as the agent's own UI shows it.

    ``kind`` is ``"shell"`` (``text`` is the command line), ``"diff"`` (an edit:
    ``lines`` is its unified diff, ``label`` the file), ``"text"`` (a file
    written whole: ``text`` is the content, ``label`` the file) or ``"json"``
    (anything else, ``text`` is the input as indented JSON).
    """

    kind: str
    text: str
    label: str | None = None
    lines: tuple[DiffLine, ...] = ()

    @property
    def short(self) -> bool:
        size = len(self.lines) if self.kind == "diff" else self.text.count("\n") + 1
        return size <= SHORT_LINES and len(self.text) <= SHORT_CHARS


@dataclass(frozen=True)
class ResultView:
    result: ToolResult
    tool_name: str | None
    output: str
    summary: str

    @property
    def short(self) -> bool:
        return self.output.count("\n") < SHORT_LINES and len(self.output) <= SHORT_CHARS


@dataclass(frozen=True)
class CallView:
    """A tool call, with the file changes its operation recorded, its result
    when that is on the same page, and the sub-agent thread it spawned."""

    call: ToolCall
    arguments: str
    shown: InputView
    files: tuple[FileChange, ...]
    result: ResultView | None = None
    spawned: str | None = None


@dataclass(frozen=True)
class UsageView:
    usage: Usage
    cost: str  # what to show: the reported cost, a computed one (≈), or "unpriced"
    cost_kind: str  # "reported", "computed" or "unpriced"


@dataclass(frozen=True)
class MessageView:
    index: int
    message: Message
    html: Markup
    calls: tuple[CallView, ...]
    results: tuple[ResultView, ...]  # those whose call is not on the page
    usage: UsageView | None
    absorbed: bool = False  # only results, each shown under its call


def usage_view(usage: Usage, timestamp: int) -> UsageView:
    """The response's cost as the store keeps it (:func:`threadline.pricing.price_usage`):
    reported, else computed from the price list (``≈``), else ``unpriced``."""
    priced = price_usage(usage, timestamp)
    if priced.cost_usd is None:
        return UsageView(usage, "unpriced", "unpriced")
    if priced.source == "reported":
        return UsageView(usage, dollars(priced.cost_usd), "reported")
    return UsageView(usage, "≈" + dollars(priced.cost_usd), "computed")


def _arguments(call: ToolCall) -> str:
    return first_line(
        ", ".join(f"{key}={orjson.dumps(value).decode()}" for key, value in call.input.items()),
        90,
    )


def _command_line(command: JsonValue) -> str | None:
    """A shell command as typed: a string as it is; an argument list joined, and
    ``bash -lc SCRIPT`` (how Codex runs commands) as the script alone."""
    if isinstance(command, str):
        return command
    if isinstance(command, list) and command and all(isinstance(a, str) for a in command):
        words = [str(a) for a in command]
        shell = words[0].rsplit("/", 1)[-1]
        if len(words) == 3 and shell in {"bash", "sh", "zsh"} and words[1] in {"-c", "-lc"}:
            return words[2]
        return shlex.join(words)
    return None


def _edit_diff(path: str, old: str, new: str) -> list[str]:
    return list(
        difflib.unified_diff(
            old.splitlines(), new.splitlines(), f"a/{path}", f"b/{path}", n=3, lineterm=""
        )
    )


def _patch_lines(patch: str) -> tuple[DiffLine, ...]:
    """An ``apply_patch`` envelope (``*** Begin Patch`` … ``*** End Patch``) as diff lines."""
    lines = []
    for text in patch.splitlines():
        if text.startswith("***"):
            kind = "meta"
        elif text.startswith("@@"):
            kind = "hunk"
        elif text.startswith("+"):
            kind = "add"
        elif text.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append(DiffLine(text, kind))
    return tuple(lines)


def input_view(call: ToolCall) -> InputView:
    """How to show ``call``'s input: a shell command as code, an edit as a diff,
    a file written whole as its text, anything else as JSON."""
    given = call.input
    named = given.get("file_path")
    path = named if isinstance(named, str) else None
    if call.name.lower() in SHELL_TOOLS or (set(given) <= {"command", "cmd", "workdir", "timeout"}):
        line = _command_line(given.get("command", given.get("cmd")))
        if line is not None:
            description = given.get("description")
            return InputView("shell", line, str(description) if description else None)
    if path is not None:
        old, new = given.get("old_string"), given.get("new_string")
        if isinstance(old, str) and isinstance(new, str):
            text = "\n".join(_edit_diff(path, old, new))
            return InputView("diff", text, path, tuple(diff_lines(text)))
        edits = given.get("edits")
        if isinstance(edits, list) and edits:
            parts: list[str] = []
            for edit in edits:
                if not isinstance(edit, dict):
                    continue
                before, after = edit.get("old_string"), edit.get("new_string")
                if isinstance(before, str) and isinstance(after, str):
                    lines = _edit_diff(path, before, after)
                    parts += lines if not parts else lines[2:]  # one file header
            if parts:
                text = "\n".join(parts)
                return InputView("diff", text, path, tuple(diff_lines(text)))
        content = given.get("content")
        if isinstance(content, str):
            return InputView("text", content, path)
    for value in given.values():
        if isinstance(value, str) and value.lstrip().startswith("*** Begin Patch"):
            return InputView("diff", value, None, _patch_lines(value))
    return InputView("json", json_text(dict(given)))


def message_views(
    messages: Sequence[Message],
    first_index: int,
    files_by_operation: dict[str, tuple[FileChange, ...]],
    spawned: dict[str, str] | None = None,
) -> list[MessageView]:
    """The messages from position ``first_index`` on, ready for the template.

    A tool result whose call is on the same page is shown under its call, as
    one block; a message left with nothing else to show is marked ``absorbed``
    (the template hides it). ``spawned`` maps a tool call's id to the
    sub-agent thread it started."""
    names = {call.id: call.name for message in messages for call in message.tool_calls}
    results: dict[str, ResultView] = {}
    for message in messages:
        for result in message.tool_results:
            output = json_text(result.output)
            results.setdefault(
                result.tool_call_id,
                ResultView(
                    result=result,
                    tool_name=names.get(result.tool_call_id),
                    output=output,
                    summary=first_line(output, 90),
                ),
            )
    placed = set(names) & set(results)
    views: list[MessageView] = []
    for offset, message in enumerate(messages):
        calls = tuple(
            CallView(
                call=call,
                arguments=_arguments(call),
                shown=input_view(call),
                files=files_by_operation.get(call.id, ()),
                result=results.get(call.id),
                spawned=(spawned or {}).get(call.id),
            )
            for call in message.tool_calls
        )
        alone = tuple(
            results[r.tool_call_id]
            for r in message.tool_results
            if r.tool_call_id not in placed and results[r.tool_call_id].result is r
        )
        views.append(
            MessageView(
                index=first_index + offset,
                message=message,
                html=markdown(message.content) if message.content else Markup(""),
                calls=calls,
                results=alone,
                usage=usage_view(message.usage, message.timestamp) if message.usage else None,
                absorbed=bool(message.tool_results)
                and not (message.content or calls or alone or message.usage),
            )
        )
    return views


@dataclass(frozen=True)
class ThreadRow:
    """A line of the thread list: the head, and where and with what it ran."""

    head: ThreadHead
    project: str | None  # the last part of the working directory
    cwd: str | None
    agent: str | None
    models: tuple[str, ...]


def thread_rows(heads: Sequence[ThreadHead], models: dict[str, list[str]]) -> list[ThreadRow]:
    """The list's rows; ``models`` maps a thread id to the models its messages used."""
    found = []
    for head in heads:
        cwd = head.env.get("cwd")
        agent = head.env.get("agent")
        path = cwd.rstrip("/") if isinstance(cwd, str) else ""
        found.append(
            ThreadRow(
                head=head,
                project=path.rsplit("/", 1)[-1] or None,
                cwd=cwd if isinstance(cwd, str) else None,
                agent=agent if isinstance(agent, str) else None,
                models=tuple(models.get(head.id, ())),
            )
        )
    return found


@dataclass(frozen=True)
class Segment:
    text: str
    marked: bool


def highlighted(hit: SearchHit) -> list[Segment]:
    """A search snippet cut into plain and highlighted pieces."""
    pieces: list[Segment] = []
    at = 0
    for start, end in sorted(hit.highlights):
        if start < at or end > len(hit.snippet):
            continue
        if start > at:
            pieces.append(Segment(hit.snippet[at:start], False))
        pieces.append(Segment(hit.snippet[start:end], True))
        at = end
    if at < len(hit.snippet):
        pieces.append(Segment(hit.snippet[at:], False))
    return pieces


@dataclass
class TreeItem:
    """A node of the sub-agent and summary tree, with the nodes under it."""

    id: str
    kind: str
    title: str
    messages: int | None
    cost: str | None
    state: str  # "ok", "deleted", "archived" or why it is held back (not synced)
    current: bool
    below: list[TreeItem] = field(default_factory=list)


def group_files(changes: Iterable[FileChange]) -> dict[str, tuple[FileChange, ...]]:
    grouped: dict[str, list[FileChange]] = {}
    for change in changes:
        grouped.setdefault(change.operation_id, []).append(change)
    return {key: tuple(value) for key, value in grouped.items()}


# -- templates --------------------------------------------------------------------------

TEMPLATES = Environment(
    loader=PackageLoader("threadline.viewer", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
TEMPLATES.filters.update(
    utc=utc_text,
    iso=iso,
    dollars=dollars,
    tokens=tokens_text,
    url=url_part,
    totals_cost=cost_of_totals,
)
TEMPLATES.globals.update(highlighted=highlighted, diff_lines=diff_lines)


def render(template: str, **context: object) -> str:
    """Render one of the viewer's templates."""
    return TEMPLATES.get_template(template).render(**context)
