"""A throwaway PostgreSQL cluster for tests and benchmarks.

:class:`TemporaryPostgres` runs ``initdb`` and ``pg_ctl`` from the system's
PostgreSQL packages (Debian: ``apt-get install postgresql``) on a temporary
directory, listening on ``127.0.0.1`` only, on a free port, with no Unix
socket, and removes everything on :meth:`~TemporaryPostgres.stop`.
``initdb`` refuses to run as root, so as root the cluster is run as the
``postgres`` user (``runuser``) on a directory that user owns.

The binaries are found in ``$THREADLINE_PG_BIN``, else the newest
``/usr/lib/postgresql/*/bin``, else ``pg_config --bindir``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Self

# Settings that make a test cluster fast; a durable cluster keeps the defaults.
_FAST = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresUnavailable(RuntimeError):
    """The system's PostgreSQL binaries are missing or the cluster did not start."""


def find_pg_bin() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    configured = os.environ.get("THREADLINE_PG_BIN")
    if configured:
        return Path(configured)
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return Path(out.stdout.strip())
    raise PostgresUnavailable(
        "PostgreSQL binaries not found: install them (apt-get install postgresql) "
        "or set THREADLINE_PG_BIN to the directory holding initdb and pg_ctl"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryPostgres:
    """A PostgreSQL cluster that lives in a temporary directory until :meth:`stop`.

    ``durable=False`` (the default, for tests) turns off ``fsync`` and
    synchronous commit; benchmarks pass ``durable=True``. ``settings`` adds
    ``-c name=value`` server settings.
    """

    def __init__(
        self,
        *,
        durable: bool = False,
        settings: dict[str, str] | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        self._bin = bin_dir
        self._settings = {**({} if durable else _FAST), **(settings or {})}
        self._root: Path | None = None
        self._user = "postgres"
        self.port = 0

    @property
    def dsn(self) -> str:
        if self._root is None:
            raise PostgresUnavailable("the cluster is not started")
        return f"postgresql://{self._user}@127.0.0.1:{self.port}/postgres"

    def _run(self, args: list[str], *, as_postgres: bool) -> subprocess.CompletedProcess[str]:
        command = ["runuser", "-u", "postgres", "--", *args] if as_postgres else args
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        bin_dir = self._bin or find_pg_bin()
        for tool in ("initdb", "pg_ctl", "postgres"):
            if not (bin_dir / tool).exists():
                raise PostgresUnavailable(
                    f"{bin_dir / tool} not found (apt-get install postgresql)"
                )
        as_root = os.geteuid() == 0
        root = Path(tempfile.mkdtemp(prefix="threadline-pg-"))
        self._root = root
        if as_root:
            shutil.chown(root, user="postgres", group="postgres")
        data = root / "data"
        done = self._run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                self._user,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            as_postgres=as_root,
        )
        if done.returncode != 0:
            self._cleanup()
            raise PostgresUnavailable(f"initdb failed: {done.stderr.strip() or done.stdout}")
        last_error = ""
        for _ in range(5):  # another process may take the free port first
            self.port = free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-p {self.port}",
                    "-c unix_socket_directories=''",
                    *(f"-c {name}={value}" for name, value in self._settings.items()),
                ]
            )
            done = self._run(
                [
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(root / "server.log"),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
                as_postgres=as_root,
            )
            if done.returncode == 0:
                return
            log = root / "server.log"
            last_error = log.read_text(errors="replace")[-2000:] if log.exists() else done.stderr
        self._cleanup()
        raise PostgresUnavailable(f"PostgreSQL did not start: {last_error.strip()}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its directory. Idempotent."""
        root = self._root
        if root is None:
            return
        if (root / "data" / "postmaster.pid").exists():
            self._run(
                [
                    str((self._bin or find_pg_bin()) / "pg_ctl"),
                    "-D",
                    str(root / "data"),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                as_postgres=os.geteuid() == 0,
            )
        self._cleanup()

    def _cleanup(self) -> None:
        root, self._root = self._root, None
        if root is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(root)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
