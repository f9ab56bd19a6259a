"""`threadline token create` and `threadline serve`, run as a user runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from threadline.testing import free_port


def threadline(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "threadline", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "THREADLINE_HOME": str(home)},
        check=False,
    )


def test_token_then_serve_on_the_embedded_default(tmp_path: Path) -> None:
    made = threadline("token", "create", "--user", "alice", "--workspace", "team", home=tmp_path)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert token.startswith("tl_")
    refused = threadline("token", "create", "--user", "a", "--workspace", "../x", home=tmp_path)
    assert refused.returncode == 2
    assert "Invalid workspace name" in refused.stderr

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "threadline", "serve", "--port", str(port)],
        env={**os.environ, "THREADLINE_HOME": str(tmp_path)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None
            assert time.monotonic() < deadline
            time.sleep(0.1)
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(f"{url}/v1/threads", json={"id": "T-1"}, headers=headers)
        assert created.status_code == 201
        assert httpx.get(f"{url}/v1/threads/T-1").status_code == 401
        assert (tmp_path / "server" / "workspaces" / "team.db").exists()
    finally:
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises SIGTERM: exit status -15.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
