"""`threadline serve --workers N`: N server processes on one port, on PostgreSQL,
run as a user runs it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

from tests.pg import make_token, new_workspace
from threadline.deltas import MessageDelta, delta_to_json
from threadline.model import Message
from threadline.testing import free_port

CONNECTIONS = 16
APPENDS = 5


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[1]) == pid:
            found.append(int(entry.name))
    return found


def _is_worker(pid: int) -> bool:
    """Whether ``pid`` is a worker uvicorn spawned (not multiprocessing's helper)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in command


def _established_ports(pid: int) -> set[int]:
    """The peer ports of the established TCP connections that ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
            ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


def _push(base: int, thread_id: str, n: int) -> bytes:
    message = Message(id=f"m-{thread_id}-{n}", role="user", content=f"append {n}")
    delta = orjson.loads(delta_to_json(MessageDelta.of(message)))
    return orjson.dumps({"base_version": base, "deltas": [delta]})


def _serve(*args: str, home: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", *args],
        env={**os.environ, "THREADLINE_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_until_up(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, server.stderr.read() if server.stderr else b""
        assert time.monotonic() < deadline
        time.sleep(0.1)


async def _append_from_every_connection(
    url: str, token: str, workers: list[int]
) -> tuple[dict[int, set[int]], list[str]]:
    """Open CONNECTIONS keep-alive connections, make a thread on each and append
    APPENDS messages on it, all at once; which worker held each connection."""
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=url, headers=headers, limits=limits) for _ in range(CONNECTIONS)
    ]
    threads = [f"T-worker-{c}" for c in range(CONNECTIONS)]
    try:
        created = await asyncio.gather(
            *(c.post("/v1/threads", json={"id": t}) for c, t in zip(clients, threads, strict=True))
        )
        assert [r.status_code for r in created] == [201] * CONNECTIONS
        held = {pid: _established_ports(pid) for pid in workers}

        async def append(client: httpx.AsyncClient, thread_id: str) -> None:
            for n in range(APPENDS):
                pushed = await client.post(
                    f"/v1/threads/{thread_id}/deltas",
                    content=_push(1 + n, thread_id, n),
                    headers={"Content-Type": "application/json"},
                )
                assert pushed.status_code == 200, pushed.text

        await asyncio.gather(*(append(c, t) for c, t in zip(clients, threads, strict=True)))
    finally:
        for client in clients:
            await client.aclose()
    return held, threads


def test_two_workers_share_the_port_and_store_every_append(
    postgres_dsn: str, tmp_path: Path
) -> None:
    workspace = new_workspace()
    token = asyncio.run(make_token(postgres_dsn, workspace))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _serve("--db", postgres_dsn, "--port", str(port), "--workers", "2", home=tmp_path)
    workers: list[int] = []
    try:
        _wait_until_up(url, server)
        deadline = time.monotonic() + 30
        while len(workers) < 2 and time.monotonic() < deadline:  # both up and listening
            workers = [p for p in _children(server.pid) if _is_worker(p)]
            time.sleep(0.1)
        held, threads = asyncio.run(_append_from_every_connection(url, token, workers))
        serving = [pid for pid, ports in held.items() if ports]
        assert len(serving) == 2, f"connections by worker: {held}"

        headers = {"Authorization": f"Bearer {token}"}
        for thread_id in threads:
            page = httpx.get(f"{url}/v1/threads/{thread_id}?limit=100", headers=headers)
            assert page.status_code == 200
            body = page.json()
            assert body["head"]["v"] == 1 + APPENDS
            assert [m["content"] for m in body["messages"]] == [
                f"append {n}" for n in range(APPENDS)
            ]
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
    assert status in (0, -signal.SIGTERM)
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists()


def test_workers_on_embedded_sqlite_are_refused(tmp_path: Path) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "threadline", "serve", "--workers", "2", "--port", "9"],
        env={**os.environ, "THREADLINE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "--workers 2 needs PostgreSQL" in refused.stderr
    assert not (tmp_path / "server").exists()
