"""Passwords are masked wherever a database URL is printed or logged (issue 16)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from threadline.recorders.workspaces import masked_url
from threadline.testing import free_port


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://bob:s3cret@db:5432/prod", "postgresql://bob:***@db:5432/prod"),
        ("postgres://bob@db/prod", "postgres://bob@db/prod"),
        (
            "postgresql://db/prod?user=bob&password=s3cret",
            "postgresql://db/prod?user=bob&password=***",
        ),
        ("postgresql://bob:p%40ss:w@db/prod", "postgresql://bob:***@db/prod"),
        ("/srv/threadline", "/srv/threadline"),
    ],
)
def test_a_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert masked_url(url) == shown


def test_serve_prints_the_database_url_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql://bob:s3cret-pw@127.0.0.1:{free_port()}/prod?password=s3cret-pw"
    result = subprocess.run(
        [sys.executable, "-m", "threadline", "serve", "--db", url, "--port", str(free_port())],
        env={**os.environ, "THREADLINE_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0  # nothing listens at that port
    assert "postgresql://bob:***@127.0.0.1" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
