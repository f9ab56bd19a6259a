"""The viewer's pages over plain HTTP (in-process): sign-in and its cookie, the
thread list, a thread, the fragments the script fetches, escaping, headers
and tenancy."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from tests.viewer.conftest import BASE, Site, client
from tests.viewer.dom import Node, parse
from tests.viewer.seeding import ARCHIVED, HOSTILE, LONG, MAIN, NEW_CONTENT, OTHER, XSS
from threadline.deltas import MessageDelta, TruncateDelta
from threadline.files.contents import encode
from threadline.files.log import UNKNOWN, FileState, NewFileChange
from threadline.model import Message
from threadline.store import ThreadStore
from threadline.viewer.render import link_allowed, markdown
from threadline.viewer.session import CONTENT_SECURITY_POLICY, COOKIE

ORIGIN = {"Origin": BASE}


def push_body(base: int, *deltas: Any) -> dict[str, Any]:
    return {"base_version": base, "deltas": [orjson.loads(d.model_dump_json()) for d in deltas]}


async def page(site: Site, url: str, status: int = 200) -> Node:
    response = await site.a.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[:300])
    return parse(response.text)


def rows(document: Node) -> dict[str, list[str]]:
    """The thread list's rows: thread link text → the texts of the row's cells."""
    found: dict[str, list[str]] = {}
    for row in document.all("tr", "thread-row"):
        link = row.one("a", "thread-link")
        found[link.text] = [cell.text for cell in row.all("td")]
    return found


def message_ids(document: Node) -> list[str]:
    return [node.attrs["id"] for node in document.all("article", "msg")]


# -- signing in -----------------------------------------------------------------


async def test_pages_send_a_visitor_without_a_token_to_sign_in(site: Site) -> None:
    for url in ("/", f"/threads/{MAIN}", f"/threads/{MAIN}/history"):
        response = await site.anonymous.get(url)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/login?next=%2F")
    fragment = await site.anonymous.get(f"/threads/{MAIN}/messages")
    assert (fragment.status_code, fragment.json()["code"]) == (401, "unauthorized")
    form = await site.anonymous.get("/login", params={"next": f"/threads/{MAIN}"})
    assert form.status_code == 200
    fields = {node.attrs["name"]: node.attrs for node in parse(form.text).all("input")}
    assert fields["next"] == {"type": "hidden", "name": "next", "value": f"/threads/{MAIN}"}
    assert fields["token"]["type"] == "password"


async def test_sign_in_keeps_the_token_in_a_secure_httponly_cookie(site: Site) -> None:
    token = site.seeded.token_a
    response = await site.anonymous.post(
        "/login", data={"token": token, "next": f"/threads/{MAIN}"}, headers=ORIGIN
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/threads/{MAIN}"
    cookie = response.headers["set-cookie"]
    parts = [part.strip() for part in cookie.split(";")]
    assert parts[0] == f"{COOKIE}={token}"
    assert {p.lower() for p in parts[1:]} >= {"httponly", "secure", "path=/", "samesite=lax"}
    assert not any(p.lower().startswith("domain") for p in parts)

    async with client(site.app, {"Cookie": f"{COOKIE}={token}"}) as browser:
        listed = await browser.get("/")
        assert listed.status_code == 200
        document = parse(listed.text)
        assert document.one("span", "who").text == "team-a · alice"
        assert "Fix the login bug" in rows(document)
        out = await browser.post("/logout", headers=ORIGIN)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    cleared = out.headers["set-cookie"]
    assert cleared.startswith(f'{COOKIE}="";') or cleared.startswith(f"{COOKIE}=;")
    assert "max-age=0" in cleared.lower()


async def test_a_wrong_token_is_refused_and_a_stale_cookie_is_cleared(site: Site) -> None:
    wrong = "tl_000000000000_" + "A" * 43
    response = await site.anonymous.post("/login", data={"token": wrong}, headers=ORIGIN)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert parse(response.text).one("p", "error").text.startswith("That token is not valid")
    async with client(site.app, {"Cookie": f"{COOKIE}={wrong}"}) as stale:
        again = await stale.get("/")
    assert again.status_code == 303
    assert "max-age=0" in again.headers["set-cookie"].lower()


async def test_sign_in_and_out_from_another_site_are_refused(site: Site) -> None:
    evil = {"Origin": "https://evil.example"}
    response = await site.anonymous.post(
        "/login", data={"token": site.seeded.token_a}, headers=evil
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    out = await site.anonymous.post("/logout", headers=evil)
    assert out.status_code == 403
    assert "set-cookie" not in out.headers
    hidden = await site.anonymous.post(
        "/login", data={"token": site.seeded.token_a}, headers={"Origin": "null"}
    )
    assert hidden.status_code == 403
    cross = await site.anonymous.post(
        "/login", data={"token": site.seeded.token_a}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status_code == 403


@pytest.mark.parametrize(
    ("asked", "went"),
    [
        ("/threads/T-main", "/threads/T-main"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("", "/"),
    ],
)
async def test_sign_in_returns_only_to_a_page_of_this_server(
    site: Site, asked: str, went: str
) -> None:
    response = await site.anonymous.post(
        "/login", data={"token": site.seeded.token_a, "next": asked}, headers=ORIGIN
    )
    assert (response.status_code, response.headers["location"]) == (303, went)


async def test_the_cookie_reads_the_api_but_never_writes(site: Site) -> None:
    async with client(site.app, {"Cookie": f"{COOKIE}={site.seeded.token_a}"}) as browser:
        listed = await browser.get("/v1/threads")
        assert listed.status_code == 200
        assert MAIN in {t["id"] for t in listed.json()["threads"]}
        created = await browser.post("/v1/threads", json={"id": "T-forged", "title": "x"})
        assert created.status_code == 401
        deleted = await browser.delete(f"/v1/threads/{MAIN}")
        assert deleted.status_code == 401
    assert (await site.a.get("/v1/threads/T-forged")).status_code == 404


# -- the thread list -----------------------------------------------------------


async def test_thread_list_shows_activity_count_cost_sync_and_archived(site: Site) -> None:
    listed = rows(await page(site, "/"))
    assert set(listed) == {
        "Fix the login bug",
        "<script>alert('title')</script>",
        "A long session",
        "An old archived session",
        "Task: find every caller of login",
        "Summary: Fix the login bug",
    }
    main = listed["Fix the login bug"]
    # project (the working directory's name), models used, id: on the title's line
    assert main[0] == f"Fix the login bug work · claude-sonnet-4 · {MAIN}"
    assert main[2:] == ["6", "$0.0386", "on server, v9"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", main[1])
    archived = listed["An old archived session"]
    assert archived[0] == f"An old archived session archived {ARCHIVED}"
    assert archived[2:] == ["1", "$0.0000", "cold storage, v2"]
    assert listed["Task: find every caller of login"][0].startswith(
        "Task: find every caller of login sub-agent"
    )
    assert OTHER not in str(listed)


async def test_thread_list_filters_by_state_and_activity(site: Site) -> None:
    active = rows(await page(site, "/?status=active"))
    assert "An old archived session" not in active
    assert len(active) == 5
    archived = rows(await page(site, "/?status=archived"))
    assert list(archived) == ["An old archived session"]
    recent = rows(await page(site, "/?since=7d"))
    assert "An old archived session" not in recent
    assert len(recent) == 5
    assert (await site.a.get("/?status=deleted")).status_code == 422


async def test_thread_list_pages_with_a_cursor(site: Site) -> None:
    for n in range(55):
        body = {"id": f"T-bulk-{n:02d}", "title": f"bulk {n:02d}", "created": 1_000 + n}
        assert (await site.a.post("/v1/threads", json=body)).status_code == 201
    first = await page(site, "/?status=active")
    assert len(rows(first)) == 50
    next_link = first.one("a", "next").attrs["href"]
    second = await page(site, next_link)
    assert len(rows(second)) == 60 - 50
    assert set(rows(first)).isdisjoint(rows(second))
    assert second.all("a", "next") == []
    assert (await site.a.get("/?cursor=nonsense")).status_code == 400


async def test_search_finds_messages_and_titles_with_highlights(site: Site) -> None:
    document = await page(site, "/?q=password")
    hits = document.all("li", "hit")
    links = {hit.one("a", "hit-thread").attrs["href"] for hit in hits}
    assert f"/threads/{MAIN}#m-m-done" in links
    marks = {mark.text.lower() for mark in document.all("mark")}
    assert marks == {"password"}
    titled = await page(site, "/?q=long+session")
    found = {
        (hit.one("a", "hit-thread").text, hit.one("span", "badge").text)
        for hit in titled.all("li", "hit")
    }
    assert ("A long session", "title") in found
    nothing = await page(site, "/?q=zebra")
    assert nothing.one("p", "empty").text == "Nothing matches zebra."
    wordless = await page(site, "/?q=%2A%2A")
    assert wordless.one("p", "error").text.startswith("The search query")
    other = await page(site, "/?q=secret")
    assert other.all("li", "hit") == []


# -- a thread ------------------------------------------------------------------------


async def test_thread_page_shows_messages_tools_usage_tree_files_and_history(
    site: Site,
) -> None:
    document = await page(site, f"/threads/{MAIN}")
    assert message_ids(document) == [
        "m-m-prompt",
        "m-m-read",
        "m-m-read-result",
        "m-m-edit",
        "m-m-edit-result",
        "m-m-done",
    ]
    prompt = document.by_id("m-m-prompt")
    assert prompt.one("span", "role").text == "user"
    assert prompt.one("time").attrs["datetime"].endswith("+00:00")
    content = prompt.one("div", "content")
    assert content.one("strong").text == "login"
    assert content.one("a").attrs == {
        "href": "https://example.com/docs",
        "rel": "nofollow noopener noreferrer",
    }
    read = document.by_id("m-m-read")
    call = read.one("section", "tool-call")
    assert call.one("div", "tool-head").text == '\u2192 Read file_path="auth.py"'
    box = call.one("details", "tool-input-box")
    assert "open" in box.attrs  # short inputs are shown
    assert orjson.loads(box.one("pre", "tool-input").text) == {"file_path": "auth.py"}
    assert read.one("span", "usage").text == "claude-sonnet-4 1,200 in 80 out $0.0123"
    # The result sits under its call, one block; the message that carried it is hidden.
    result = call.one("details", "tool-result")
    assert result.attrs["id"] == "r-toolu_read"
    assert "open" in result.attrs
    assert result.one("strong", "tool-name").text == "Read"
    assert result.one("pre").raw_text == "def login(user):\n    return False\n"
    assert "msg-absorbed" in document.by_id("m-m-read-result").classes
    assert document.by_id("m-m-read-result").all("details", "tool-result") == []
    edit = document.by_id("c-toolu_edit")
    assert edit.one("span", "tool-label").text == "auth.py"
    diff = edit.one("pre", "diff")
    assert [line.text for line in diff.all("span", "dl-del")] == ["-return False"]
    assert [line.text for line in diff.all("span", "dl-add")] == ["+return user.password_ok"]
    assert [li.text for li in edit.all("li")] == ["modify auth.py"]
    assert edit.one("details", "tool-result").one("pre").text == "edited auth.py"
    done = document.by_id("m-m-done")
    assert done.one("table").all("td")[0].text == "auth.py"
    assert done.one("span", "cost").classes == {"cost", "cost-computed"}

    reported = document.one("dl", "costs")
    assert [dd.text for dd in reported.all("dd")] == ["$0.0386", "4,500", "260"]
    assert document.by_id("costs").attrs["data-fragment"] == f"/threads/{MAIN}/costs?fragment=true"
    tree = document.one("ul", "tree")
    assert tree.one("strong").text == "Fix the login bug"
    tree_links = {a.text: a.attrs["href"] for a in tree.all("a", "tree-link")}
    assert tree_links == {
        "Task: find every caller of login": f"/threads/{site.seeded.sub}",
        "Summary: Fix the login bug": f"/threads/{site.seeded.summary}",
    }
    operation = document.by_id("op-toolu_edit")
    assert operation.attrs["data-diff"] == (
        f"/threads/{MAIN}/files?operation=toolu_edit&fragment=true"
    )
    history = [li.one("span", "v").text for li in document.one("ol", "history").all("li")]
    assert history == [f"v{n}" for n in range(9, 0, -1)]
    env = document.one("dl", "env")
    assert [dt.text for dt in env.all("dt")] == ["cwd", "git_branch"]


async def test_cost_report_fragment_prices_what_was_not_reported(site: Site) -> None:
    store = ThreadStore(await site.storage.recorder("team-a"))
    expected = await store.cost_report(MAIN, by="model")
    assert expected.total.computed_messages == 1
    response = await site.a.get(f"/threads/{MAIN}/costs", params={"fragment": "true"})
    assert response.status_code == 200
    fragment = parse(response.text)
    own, with_tree = fragment.all("dl", "costs")
    values = {dt.text: dd.text for dt, dd in zip(own.all("dt"), own.all("dd"), strict=True)}
    assert values == {
        "Total cost": f"${expected.total.cost_usd:,.4f}",
        "of which computed": f"${expected.total.computed_cost_usd:,.4f} (1 msgs)",
        "Input": "4,500",
        "Output": "260",
        "Responses": "3",
    }
    assert with_tree.one("dd", "total-cost").text == f"${expected.total.cost_usd:,.4f}"
    whole = await page(site, f"/threads/{MAIN}/costs")
    assert whole.one("p", "meta").text.startswith("Prices of responses that reported no cost")
    assert (await site.a.get(f"/threads/{OTHER}/costs?fragment=true")).status_code == 404


async def test_a_sub_agent_links_back_to_its_parent(site: Site) -> None:
    document = await page(site, f"/threads/{site.seeded.sub}")
    assert document.one("a", "up").attrs["href"] == f"/threads/{MAIN}"
    tree = document.one("ul", "tree")
    assert tree.one("strong").text == "Task: find every caller of login"
    assert tree.all("a", "tree-link")[0].attrs["href"] == f"/threads/{MAIN}"


async def test_file_diff_fragment_and_page(site: Site) -> None:
    response = await site.a.get(
        f"/threads/{MAIN}/files", params={"operation": "toolu_edit", "fragment": "true"}
    )
    assert response.status_code == 200
    fragment = parse(response.text)
    added = [line.raw_text for line in fragment.all("span", "dl-add")]
    removed = [line.raw_text for line in fragment.all("span", "dl-del")]
    assert added == ["+    return user.password_ok"]
    assert removed == ["-    return False"]
    assert NEW_CONTENT.splitlines()[1].strip() in response.text
    full = await page(site, f"/threads/{MAIN}/files")
    assert [h.text for h in full.all("h2")] == ["Operation toolu_edit"]
    missing = await site.a.get(
        f"/threads/{MAIN}/files", params={"operation": "nope", "fragment": "true"}
    )
    assert missing.status_code == 404


async def test_long_thread_shows_the_newest_page_and_fragments_page_back(site: Site) -> None:
    document = await page(site, f"/threads/{LONG}")
    indices = [int(a.attrs["data-index"]) for a in document.all("article", "msg")]
    assert indices == list(range(70, 120))
    pane = document.by_id("messages")
    assert (pane.attrs["data-first-index"], pane.attrs["data-has-more"]) == ("70", "true")
    older = (await site.a.get(f"/threads/{LONG}/messages", params={"before": 70})).json()
    assert (older["first_index"], older["end_index"], older["has_more"]) == (20, 70, True)
    assert [int(n.attrs["data-index"]) for n in parse(older["html"]).all("article")] == list(
        range(20, 70)
    )
    oldest = (await site.a.get(f"/threads/{LONG}/messages", params={"before": 20})).json()
    assert (oldest["first_index"], oldest["has_more"]) == (0, False)
    no_script = await page(site, f"/threads/{LONG}?before=70")
    assert [int(a.attrs["data-index"]) for a in no_script.all("article")] == list(range(20, 70))
    assert no_script.by_id("messages").attrs["data-live"] == "false"


async def test_tail_fragment_brings_new_messages_and_resets_after_a_truncate(
    site: Site,
) -> None:
    head = (await site.a.get(f"/v1/threads/{LONG}", params={"limit": 0})).json()["head"]
    nothing = (await site.a.get(f"/threads/{LONG}/messages", params={"after": 120})).json()
    assert (nothing["html"].strip(), nothing["end_index"], nothing["reset"]) == ("", 120, False)
    new = Message(id="m-new", role="assistant", content="A *new* message.")
    pushed = await site.a.post(
        f"/v1/threads/{LONG}/deltas", json=push_body(head["v"], MessageDelta.of(new))
    )
    assert pushed.status_code == 200
    tail = (await site.a.get(f"/threads/{LONG}/messages", params={"after": 120})).json()
    assert (tail["first_index"], tail["end_index"], tail["reset"]) == (120, 121, False)
    assert (tail["message_count"], tail["v"]) == (121, head["v"] + 1)
    assert message_ids(parse(tail["html"])) == ["m-m-new"]
    assert parse(tail["html"]).one("em").text == "new"
    cut = await site.a.post(
        f"/v1/threads/{LONG}/deltas", json=push_body(head["v"] + 1, TruncateDelta(from_index=10))
    )
    assert cut.status_code == 200
    reset = (await site.a.get(f"/threads/{LONG}/messages", params={"after": 121})).json()
    assert (reset["reset"], reset["first_index"], reset["end_index"]) == (True, 0, 10)


async def test_archived_thread_shows_what_is_kept(site: Site) -> None:
    document = await page(site, f"/threads/{ARCHIVED}")
    notice = document.one("p", "archived-notice").text
    assert notice.startswith("Archived")
    assert f"threadline restore {ARCHIVED}" in notice
    assert document.all("article") == []
    fragment = await site.a.get(f"/threads/{ARCHIVED}/messages")
    assert fragment.status_code == 404
    # Looking did not restore it.
    assert (await page(site, "/?status=archived")).one("a", "thread-link").text == (
        "An old archived session"
    )


async def test_version_history_pages(site: Site) -> None:
    head = (await site.a.get(f"/v1/threads/{LONG}", params={"limit": 0})).json()["head"]
    assert head["v"] == 121
    newest = await page(site, f"/threads/{LONG}/history")
    versions = [li.one("span", "v").text for li in newest.one("ol", "history").all("li")]
    assert versions == [f"v{n}" for n in range(121, 21, -1)]
    older_link = newest.all("a", None)[-1].attrs["href"]
    assert older_link == f"/threads/{LONG}/history?upto=21"
    oldest = await page(site, older_link)
    versions = [li.one("span", "v").text for li in oldest.one("ol", "history").all("li")]
    assert versions == [f"v{n}" for n in range(21, 0, -1)]
    assert oldest.all("li")[-1].one("span", "what").text == "created 'A long session'"


# -- safety ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://example.com/a", True),
        ("http://example.com", True),
        ("mailto:someone@example.com", True),
        ("/threads/T-1", True),
        ("#m-1", True),
        ("relative/path?x=1:2", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("vbscript:msgbox(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("file:///etc/passwd", False),
    ],
)
def test_only_web_and_mail_links_are_allowed(url: str, allowed: bool) -> None:
    assert link_allowed(url) is allowed


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_no_script_handler_or_unsafe_href(text: str) -> None:
    html = str(markdown(text))
    document = parse(html)
    assert document.all("script") == []
    assert document.all("img") == []
    for node in document.all():
        assert not any(name.startswith("on") for name in node.attrs), html
        href = re.sub(r"[\x00-\x20]", "", node.attrs.get("href", "")).lower()
        assert href == "" or href.startswith(("https://", "http://", "/", "#")), html


async def test_hostile_thread_renders_as_text(site: Site) -> None:
    response = await site.a.get(f"/threads/{XSS}")
    assert response.status_code == 200
    document = parse(response.text)
    scripts = document.all("script")
    assert [s.attrs for s in scripts] == [{"src": "/static/viewer.js", "defer": ""}]
    assert document.all("img") == []
    for node in document.all():
        assert not any(name.startswith("on") for name in node.attrs)
        href = node.attrs.get("href", "").lower()
        assert not href.startswith(("javascript", "data", "vbscript")), node
    first = document.by_id("m-m-hostile-0").one("div", "content")
    assert first.text == "<script>alert(1)</script>"
    second = document.by_id("m-m-hostile-1").one("div", "content")
    assert second.text == "[click me](javascript:alert(1))"
    assert second.all("a") == []
    safe = document.by_id("m-m-hostile-9").one("div", "content").one("a")
    assert safe.attrs["href"] == "https://example.com/ok"
    assert document.one("h1").text == "<script>alert('title')</script>"
    tool = document.by_id("c-toolu_hostile")
    assert tool.one("div", "tool-head").one("strong").text == "<b>Bash</b>"
    assert tool.one("pre", "tool-shell").raw_text == "$ </pre><script>alert(9)</script>"
    result = document.by_id("r-toolu_hostile")
    assert result.one("pre").raw_text == "<script>alert(10)</script>"


async def test_pages_send_a_strict_content_security_policy(site: Site) -> None:
    for url in ("/", f"/threads/{MAIN}", "/login", "/static/viewer.js"):
        response = await (site.anonymous if url == "/login" else site.a).get(url)
        assert response.status_code == 200, url
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    for url in ("/", f"/threads/{MAIN}", f"/threads/{XSS}"):
        text = (await site.a.get(url)).text
        document = parse(text)
        assert all(s.attrs.get("src") for s in document.all("script")), url
        assert document.all("style") == []
        assert not any("style" in node.attrs for node in document.all()), url


# -- tenancy ---------------------------------------------------------------------------


async def test_another_workspaces_thread_answers_404_like_an_unknown_one(site: Site) -> None:
    urls = ("/threads/{}", "/threads/{}/history", "/threads/{}/files", "/threads/{}/costs")
    for template in urls:
        theirs = await site.a.get(template.format(OTHER))
        unknown = await site.a.get(template.format("T-nothing"))
        assert (theirs.status_code, unknown.status_code) == (404, 404), template
        assert theirs.text.replace(OTHER, "ID") == unknown.text.replace("T-nothing", "ID")
        assert "secret" not in theirs.text
        assert "Team B" not in theirs.text
    fragment = await site.a.get(f"/threads/{OTHER}/messages")
    assert fragment.status_code == 404
    mine = await site.b.get(f"/threads/{OTHER}")
    assert mine.status_code == 200
    assert (await site.b.get(f"/threads/{MAIN}")).status_code == 404
    assert "Fix the login bug" not in (await site.b.get("/")).text


async def test_thread_ids_with_url_characters_round_trip(site: Site) -> None:
    odd = 'T-a b?c#d%e<f>"g'
    body = {"id": odd, "title": "odd id", "messages": [{"role": "user", "content": "hi"}]}
    assert (await site.a.post("/v1/threads", json=body)).status_code == 201
    link = rows(await page(site, "/"))["odd id"]
    assert link[0] == f"odd id {odd}"
    href = (await page(site, "/")).all("a", "thread-link")[0].attrs["href"]
    assert href == "/threads/T-a%20b%3Fc%23d%25e%3Cf%3E%22g"
    document = await page(site, href)
    assert document.by_id("messages").attrs["data-thread-id"] == odd
    assert document.one("h1").text == "odd id"
    fragment = await site.a.get(f"{href}/messages", params={"before": 1})
    assert (fragment.status_code, fragment.json()["first_index"]) == (200, 0)


async def test_a_change_whose_before_is_not_recorded_shows_no_invented_diff(site: Site) -> None:
    """An imported Write over a file its transcript never showed: the viewer
    says the content before is not recorded, and draws no diff."""
    recorder = await site.storage.recorder("team-a")
    written = encode(b"DEBUG = False\n")
    after = FileState(hash=written.hash, size=written.size, mode=0o644)
    await recorder.record_file_changes(
        MAIN, [NewFileChange("toolu_edit", "config.py", UNKNOWN, after)], [written]
    )
    response = await site.a.get(
        f"/threads/{MAIN}/files", params={"operation": "toolu_edit", "fragment": "true"}
    )
    assert response.status_code == 200
    edited, blind = parse(response.text).all("div", "file-diff")
    assert edited.all("span", "unrecorded") == []
    assert [s.text for s in blind.all("span", "unrecorded")] == [
        "before not recorded in the transcript"
    ]
    assert blind.all("pre", "diff") == []
    assert blind.one("p", "unrecorded").text == (
        "No diff: before not recorded in the transcript: config.py ? -> 14 bytes"
    )
    document = await page(site, f"/threads/{MAIN}")
    listed = document.by_id("op-toolu_edit").all("li")
    assert [li.one("code").text for li in listed] == ["auth.py", "config.py"]
    assert [len(li.all("span", "unrecorded")) for li in listed] == [0, 1]
    call_files = document.one("ul", "call-files").all("li")
    assert [len(li.all("span", "unrecorded")) for li in call_files] == [0, 1]
