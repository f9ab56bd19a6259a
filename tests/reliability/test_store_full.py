"""A full disk, for real (issue 16): a 2 MB tmpfs mounted in a private mount
namespace (``unshare -rm``: no root needed where user namespaces are allowed),
so SQLite's writes fail with ENOSPC / SQLITE_FULL as they would on a full disk.

A full disk is :class:`~threadline.StoreFull` (retryable, a clear CLI message),
not "corrupt"; once space is freed appends go on, and the WAL stays bounded.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from threadline.recorders.sqlite_writer import WAL_SIZE_LIMIT
from threadline.testing import free_port

CHILD = Path(__file__).with_name("full_disk_child.py")


def in_small_tmpfs(directory: Path, size: str, *command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` with ``directory`` a tmpfs of ``size``, seen only by it."""
    if shutil.which("unshare") is None:
        pytest.fail("unshare (util-linux) is needed to mount a small tmpfs")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"user namespaces are not allowed here: {probe.stderr!r}")
    directory.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o size="$1" tmpfs "$2" && shift 2 && exec "$@"'
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", size, str(directory), *command],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_full_disk_is_store_full_and_appends_resume_once_space_is_freed(
    tmp_path: Path,
) -> None:
    disk = tmp_path / "disk"
    ran = in_small_tmpfs(disk, "2m", sys.executable, str(CHILD), str(disk))
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert report["appended_before_full"] > 10
    assert (report["error"], report["is_store_full"], report["retryable"]) == (
        "StoreFull",
        True,
        True,
    )
    assert report["cli_status"] == 1
    assert "is full" in report["cli_stderr"]
    assert "not a readable threadline database" not in report["cli_stderr"]
    assert report["appended_after_freeing"] == 5
    assert report["messages"] == report["appended_before_full"] + 5
    assert report["wal_after_freeing"] <= WAL_SIZE_LIMIT
    assert (report["list_status"], report["doctor_status"]) == (0, 0)


def _message_push(base: int, message_id: str, content: str) -> dict[str, object]:
    message = {"id": message_id, "role": "user", "content": content}
    return {"base_version": base, "deltas": [{"type": "user:message", "message": message}]}


def test_a_server_on_a_full_disk_answers_503_and_healthz_says_degraded(tmp_path: Path) -> None:
    """``threadline serve`` (embedded SQLite) with its home on a 2 MB tmpfs, over
    real HTTP: 503 + Retry-After with code ``store_full`` (no path), /healthz
    degraded; once space is freed, writes go on and /healthz is ok again."""
    if subprocess.run(["unshare", "-rm", "true"], capture_output=True, check=False).returncode:
        pytest.skip("user namespaces are not allowed here")
    disk = tmp_path / "disk"
    disk.mkdir()
    token_file = tmp_path / "token.json"
    log = tmp_path / "server.log"
    port = free_port()
    script = (
        'mount -t tmpfs -o size=2m tmpfs "$1" && '
        'head -c 400000 /dev/urandom > "$1/filler" && '
        '"$2" -m threadline token create --user u --workspace w --json > "$3" && '
        'exec "$2" -m threadline serve --port "$4"'
    )
    command = ["unshare", "-rm", "sh", "-c", script, "sh", str(disk), sys.executable]
    with log.open("wb") as errors:
        server = subprocess.Popen(
            [*command, str(token_file), str(port)],
            env={**os.environ, "THREADLINE_HOME": str(disk)},
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            _wait_until_up(http, server, log)
            token = json.loads(token_file.read_text())["token"]
            http.headers["Authorization"] = f"Bearer {token}"
            assert http.post("/v1/threads", json={"id": "T-1"}).status_code == 201
            version, refused = 1, None
            for n in range(500):
                push = _message_push(version, f"M-{n}", secrets.token_urlsafe(30_000))
                response = http.post("/v1/threads/T-1/deltas", json=push)
                if response.status_code != 200:
                    refused = response
                    break
                version = response.json()["version"]
            assert refused is not None, "the disk never filled"
            assert (refused.status_code, refused.json()["code"]) == (503, "store_full")
            assert int(refused.headers["Retry-After"]) >= 1
            assert str(disk) not in refused.text
            health = http.get("/healthz")
            assert (health.status_code, health.json()) == (
                503,
                {"status": "degraded", "problems": ["store_full"]},
            )
            # The operator frees space (seen through the server's mount namespace).
            Path(f"/proc/{server.pid}/root{disk}/filler").unlink()
            accepted = http.post("/v1/threads/T-1/deltas", json=_message_push(version, "M", "ok"))
            assert accepted.status_code == 200, accepted.text
            assert http.get("/healthz").json() == {"status": "ok"}
            assert http.get("/v1/threads/T-1").status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_until_up(http: httpx.Client, server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(300):
        if server.poll() is not None:
            raise AssertionError(log.read_text())
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not start")
