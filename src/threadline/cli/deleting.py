"""``threadline delete``: a thin mirror of ``ThreadStore.delete_thread``."""

from __future__ import annotations

import click

from threadline.cli.commands import Settings, console, json_option, print_json, run
from threadline.store import ThreadStore


@click.command(name="delete")
@click.argument("thread_id", metavar="ID")
@click.option(
    "--tree", "with_tree", is_flag=True, help="Also delete every sub-agent and summary under ID."
)
@json_option
@click.pass_obj
def delete_command(settings: Settings, thread_id: str, with_tree: bool, as_json: bool) -> None:
    """Delete thread ID and its whole log (with --tree, its sub-agent and summary
    threads too). The next sync deletes it on the server and the other machines,
    unless the server got a change this machine had not seen: then the thread is
    kept and its sync status says so (docs/sync.md)."""

    async def work(store: ThreadStore) -> list[str]:
        return await store.delete_thread(thread_id, tree=with_tree)

    deleted = run(settings, work)
    if as_json:
        print_json({"deleted": deleted})
        return
    out = console()
    for gone in deleted:
        out.print(f"Deleted {gone}")


COMMANDS = (delete_command,)
