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
import re
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

from threadline.costs import DAY_MS, compute_cost
from threadline.files.log import FileChange
from threadline.model import Message, ToolCall, ToolResult, Usage, UsageTotals
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


# -- view models --------------------------------------------------------------------


@dataclass(frozen=True)
class CallView:
    """A tool call, with the file changes its operation recorded."""

    call: ToolCall
    arguments: str
    input_json: str
    files: tuple[FileChange, ...]


@dataclass(frozen=True)
class ResultView:
    result: ToolResult
    tool_name: str | None
    output: str
    summary: str


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
    results: tuple[ResultView, ...]
    usage: UsageView | None


def usage_view(usage: Usage, timestamp: int) -> UsageView:
    """The reported cost, else the price list's (as :mod:`threadline.costs` prices
    it for roll-ups), else ``unpriced``."""
    if usage.cost_usd is not None:
        return UsageView(usage, dollars(usage.cost_usd), "reported")
    if usage.model is not None:
        computed = compute_cost(
            usage.model,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            timestamp // DAY_MS,
        )
        if computed is not None:
            return UsageView(usage, "≈" + dollars(computed), "computed")
    return UsageView(usage, "unpriced", "unpriced")


def _arguments(call: ToolCall) -> str:
    return first_line(
        ", ".join(f"{key}={orjson.dumps(value).decode()}" for key, value in call.input.items()),
        90,
    )


def message_views(
    messages: Sequence[Message],
    first_index: int,
    files_by_operation: dict[str, tuple[FileChange, ...]],
) -> list[MessageView]:
    """The messages from position ``first_index`` on, ready for the template."""
    names = {call.id: call.name for message in messages for call in message.tool_calls}
    views: list[MessageView] = []
    for offset, message in enumerate(messages):
        calls = tuple(
            CallView(
                call=call,
                arguments=_arguments(call),
                input_json=json_text(dict(call.input)),
                files=files_by_operation.get(call.id, ()),
            )
            for call in message.tool_calls
        )
        results = []
        for result in message.tool_results:
            output = json_text(result.output)
            results.append(
                ResultView(
                    result=result,
                    tool_name=names.get(result.tool_call_id),
                    output=output,
                    summary=first_line(output, 90),
                )
            )
        views.append(
            MessageView(
                index=first_index + offset,
                message=message,
                html=markdown(message.content) if message.content else Markup(""),
                calls=calls,
                results=tuple(results),
                usage=usage_view(message.usage, message.timestamp) if message.usage else None,
            )
        )
    return views


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
