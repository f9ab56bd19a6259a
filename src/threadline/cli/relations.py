"""``threadline tree``, ``spawn``, ``summarize`` and ``cost``: thin mirrors of
``ThreadStore.get_thread_tree``, ``spawn_subagent_thread``,
``create_summary_thread`` and ``cost_report``.
"""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from threadline.cli.commands import Settings, _read_input, console, json_option, print_json, run
from threadline.cli.render import dollars
from threadline.costs import CostLine, CostReport, GroupBy
from threadline.relations import ThreadTree, TreeNode
from threadline.store import ThreadStore

_KIND_STYLES = {"root": "bold", "child": "bold cyan", "summary": "bold magenta"}
_GROUPS: dict[str, GroupBy] = {"model": "model", "day": "day", "thread": "thread"}


@click.command(name="tree")
@click.argument("thread_id", metavar="ID")
@click.option("--root", "from_root", is_flag=True, help="Draw the whole tree ID belongs to.")
@json_option
@click.pass_obj
def tree_command(settings: Settings, thread_id: str, from_root: bool, as_json: bool) -> None:
    """Draw thread ID and every sub-agent and summary thread under it, with
    message counts and cost per thread. Deleted threads still linked are shown
    as missing."""

    async def work(store: ThreadStore) -> tuple[ThreadTree, CostReport]:
        top = (await store.get_root_thread(thread_id)).id if from_root else thread_id
        tree = await store.get_thread_tree(top)
        return tree, await store.cost_report(top, tree=True, by="thread")

    tree, report = run(settings, work)
    costs = {line.key: line for line in report.groups}
    if as_json:
        print_json(
            {
                **tree.model_dump(mode="json"),
                "costs": {key: line.model_dump(mode="json") for key, line in costs.items()},
                "total": report.total.model_dump(mode="json"),
                "price_source": report.price_source,
            }
        )
        return
    out = console()
    out.print(_draw(tree, costs), soft_wrap=True)
    held = [n.last_known.cost for n in tree.nodes if n.last_known and n.last_known.cost]
    out.print(
        Text(
            f"{len(tree.nodes)} thread(s), {_cost(report.total)} in all"
            + (f", {len(tree.missing)} missing" if tree.missing else "")
            + (
                f" (and {dollars(sum(c.cost_usd for c in held))} last known of "
                f"{len(held)} not synced)"
                if held
                else ""
            ),
            style="dim",
        )
    )
    _print_cost_notes(out, report)


def _label(node: TreeNode, cost: CostLine | None) -> Text:
    text = Text()
    if node.kind != "root":
        text.append("sub-agent " if node.kind == "child" else "summary ", style="dim")
    if node.head is None:
        known = node.last_known
        if known is not None:  # held back: what its machine last knew of it
            text.append(known.title or "(untitled)", style=_KIND_STYLES[node.kind])
            text.append(f"  {node.id}", style="dim")
            text.append(f"  {known.messages} messages · ")
            text.append(_cost(known.cost) if known.cost is not None else dollars(0.0))
        else:
            text.append(node.id, style="bold red")
        if node.held_back is not None:
            text.append(f" {node.held_back}", style="yellow")
        else:
            text.append(" archived" if node.archived else " missing (deleted)", style="red")
        return text
    text.append(node.head.title or "(untitled)", style=_KIND_STYLES[node.kind])
    text.append(f"  {node.id}", style="dim")
    text.append(f"  {node.head.message_count} messages · ")
    text.append(_cost(cost) if cost is not None else dollars(0.0), style="yellow")
    return text


def _draw(tree: ThreadTree, costs: dict[str, CostLine]) -> Tree:
    root = Tree(_label(tree.root, costs.get(tree.root_id)))
    branches = {tree.root_id: root}
    for node in tree.nodes[1:]:  # depth first: a parent is drawn before its children
        assert node.parent_id is not None
        branches[node.id] = branches[node.parent_id].add(_label(node, costs.get(node.id)))
    return root


@click.command(name="spawn")
@click.argument("parent_id", metavar="PARENT_ID")
@click.argument("task", required=False)
@json_option
@click.pass_obj
def spawn_command(settings: Settings, parent_id: str, task: str | None, as_json: bool) -> None:
    """Create a sub-agent thread of PARENT_ID for TASK and print its id.

    TASK (or stdin, without it or with "-") becomes the thread's title
    ("Task: TASK") and its first, user message; the parent records the new
    thread in the same transaction.
    """
    description = _read_input(task)
    child = run(settings, lambda store: store.spawn_subagent_thread(parent_id, description))
    if as_json:
        print_json(child.model_dump(mode="json"))
    else:
        click.echo(child.id)


@click.command(name="summarize")
@click.argument("source_id", metavar="SOURCE_ID")
@click.argument("summary", required=False)
@json_option
@click.pass_obj
def summarize_command(
    settings: Settings, source_id: str, summary: str | None, as_json: bool
) -> None:
    """Create a summary thread of SOURCE_ID holding SUMMARY and print its id.

    SUMMARY (or stdin, without it or with "-") becomes the thread's one
    assistant message; it is titled "Summary: <source title>"; the source
    records it in the same transaction.
    """
    content = _read_input(summary)
    made = run(settings, lambda store: store.create_summary_thread(source_id, content))
    if as_json:
        print_json(made.model_dump(mode="json"))
    else:
        click.echo(made.id)


@click.command(name="cost")
@click.argument("thread_id", metavar="[ID]", required=False)
@click.option("--tree", is_flag=True, help="Include every sub-agent and summary thread under ID.")
@click.option(
    "--by",
    type=click.Choice(list(_GROUPS)),
    help="One line per model, per UTC day or per thread.",
)
@click.option(
    "--reprice",
    is_flag=True,
    help="First price every stored message again with the installed price list.",
)
@json_option
@click.pass_obj
def cost_command(
    settings: Settings,
    thread_id: str | None,
    tree: bool,
    by: str | None,
    reprice: bool,
    as_json: bool,
) -> None:
    """Tokens and cost of thread ID, or of every thread without ID.

    Each message is priced once, when it is stored: its reported cost, else
    one computed from its token counts and model with the genai-prices price
    list (shown apart). --reprice prices the stored messages again with the
    installed list (reported costs stay).
    """
    if tree and thread_id is None:
        raise click.UsageError("--tree needs a thread ID")
    group = None if by is None else _GROUPS[by]

    async def work(store: ThreadStore) -> tuple[int | None, CostReport]:
        repriced = await store.reprice() if reprice else None
        return repriced, await store.cost_report(thread_id, tree=tree, by=group)

    repriced, report = run(settings, work)
    if as_json:
        extra = {} if repriced is None else {"repriced": repriced}
        print_json({**report.model_dump(mode="json"), **extra})
        return
    out = console()
    if repriced is not None:
        out.print(f"Repriced {repriced:,} stored message(s) with {report.price_source}.")
    scope = "every thread" if thread_id is None else thread_id
    if tree:
        scope += " and every thread under it"
    table = Table(title=f"Cost of {scope}", title_justify="left", header_style="bold", box=None)
    table.add_column({"model": "Model", "day": "Day (UTC)", "thread": "Thread"}.get(by or "", ""))
    for name in ("msgs", "input", "output", "cache read", "cache write", "USD"):
        table.add_column(name, justify="right")
    for line in (*report.groups, report.total):
        table.add_row(
            "Total" if line is report.total else line.key,
            f"{line.messages:,}",
            f"{line.input_tokens:,}",
            f"{line.output_tokens:,}",
            f"{line.cache_read_tokens:,}",
            f"{line.cache_write_tokens:,}",
            _cost(line),
            style="bold" if line is report.total else None,
        )
    out.print(table)
    _print_cost_notes(out, report)


def _cost(line: CostLine) -> str:
    text = dollars(line.cost_usd)
    if line.computed_messages:
        text += "*"
    if line.unpriced_messages:
        text += f" (+{line.unpriced_messages} unpriced)"
    return text


def _print_cost_notes(out: Console, report: CostReport) -> None:
    total = report.total
    if total.computed_messages:
        out.print(
            Text(
                f"* includes {dollars(total.computed_cost_usd)} computed for "
                f"{total.computed_messages} message(s) that recorded no cost, from their "
                f"tokens and model when stored (installed: {report.price_source}; "
                "--reprice prices them again).",
                style="dim",
            )
        )
    if total.unpriced_messages:
        models = ", ".join(report.unknown_models) or "none named"
        out.print(
            Text(
                f"{total.unpriced_messages} message(s) recorded no cost and could not be "
                f"priced (models without a price: {models}).",
                style="dim",
            )
        )


COMMANDS = (tree_command, spawn_command, summarize_command, cost_command)
