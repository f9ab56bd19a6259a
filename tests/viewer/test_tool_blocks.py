"""How the viewer shows a tool call: as the agent shows it, with its result beneath."""

from __future__ import annotations

from threadline.model import Message, ToolCall, ToolResult, Usage
from threadline.viewer.render import input_view, message_views


def call(name: str, **given: object) -> ToolCall:
    return ToolCall(id=f"call-{name}", name=name, input=given)


def test_a_shell_command_is_shown_as_typed() -> None:
    shown = input_view(call("Bash", command="pytest -x tests/", description="Run the tests"))
    assert (shown.kind, shown.text, shown.label) == ("shell", "pytest -x tests/", "Run the tests")


def test_codex_argument_lists_become_command_lines() -> None:
    script = input_view(call("shell", command=["bash", "-lc", "ls -la | head"]))
    assert (script.kind, script.text) == ("shell", "ls -la | head")
    words = input_view(call("shell", command=["rg", "-n", "two words", "src"]))
    assert words.text == "rg -n 'two words' src"


def test_an_edit_is_a_diff_of_the_file() -> None:
    shown = input_view(
        call("Edit", file_path="app/auth.py", old_string="a\nb\nc", new_string="a\nB\nc")
    )
    assert (shown.kind, shown.label) == ("diff", "app/auth.py")
    assert [(line.kind, line.text) for line in shown.lines if line.kind in {"add", "del"}] == [
        ("del", "-b"),
        ("add", "+B"),
    ]
    assert shown.lines[0].text == "--- a/app/auth.py"


def test_a_multi_edit_is_one_diff_per_edit() -> None:
    shown = input_view(
        call(
            "MultiEdit",
            file_path="x.py",
            edits=[
                {"old_string": "one", "new_string": "1"},
                {"old_string": "two", "new_string": "2"},
            ],
        )
    )
    assert [line.text for line in shown.lines if line.kind == "add"] == ["+1", "+2"]
    assert [line.kind for line in shown.lines].count("meta") == 2  # one file header


def test_a_written_file_is_its_text_and_a_patch_is_a_diff() -> None:
    written = input_view(call("Write", file_path="plan.md", content="# Plan\n"))
    assert (written.kind, written.label, written.text) == ("text", "plan.md", "# Plan\n")
    patch = "*** Begin Patch\n*** Update File: a.py\n@@\n-old\n+new\n*** End Patch"
    shown = input_view(call("apply_patch", input=patch))
    assert [line.kind for line in shown.lines] == ["meta", "meta", "hunk", "del", "add", "meta"]


def test_anything_else_is_json_and_long_inputs_fold() -> None:
    shown = input_view(call("Glob", pattern="**/*.py"))
    assert (shown.kind, shown.short) == ("json", True)
    long = input_view(call("Write", file_path="big.txt", content="line\n" * 100))
    assert not long.short


def test_a_result_joins_its_call_and_its_message_is_hidden_when_nothing_else_is_left() -> None:
    asked = Message(id="m1", role="assistant", tool_calls=(call("Bash", command="ls"),))
    answered = Message(
        id="m2", role="user", tool_results=(ToolResult(tool_call_id="call-Bash", output="a\nb"),)
    )
    views = message_views([asked, answered], 0, {})
    block = views[0].calls[0]
    assert block.result is not None
    assert block.result.output == "a\nb"
    assert block.result.tool_name == "Bash"
    assert (views[1].results, views[1].absorbed) == ((), True)


def test_a_result_whose_call_is_on_another_page_stays_where_it_is() -> None:
    answered = Message(
        id="m2",
        role="user",
        content="and also this",
        tool_results=(ToolResult(tool_call_id="elsewhere", output="done", is_error=True),),
        usage=Usage(input_tokens=1),
    )
    (view,) = message_views([answered], 7, {})
    assert [r.result.tool_call_id for r in view.results] == ["elsewhere"]
    assert (view.absorbed, view.index) == (False, 7)


def test_a_task_call_links_to_the_sub_agent_it_started() -> None:
    asked = Message(id="m1", role="assistant", tool_calls=(call("Task", prompt="look"),))
    (view,) = message_views([asked], 0, {}, {"call-Task": "T-child"})
    assert view.calls[0].spawned == "T-child"
