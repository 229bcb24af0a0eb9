#!/usr/bin/env python3
"""Find, or start, the PostgreSQL and Redis the test suite talks to. Standard library only
(it runs before anything is imported from the project).

    python scripts/services.py run -- COMMAND...   # `make test`
    python scripts/services.py system              # `.ci/run`: the machine's own services

`run` looks at DATABASE_URL (default postgres://postgres@127.0.0.1:5432/portal) and at
REDIS_URL_FOR_TESTS (default redis://127.0.0.1:6379/15). A service that answers is used as
it is. When PostgreSQL does not answer and its server programs (initdb, pg_ctl) are
installed, a throwaway cluster of our own is made under var/ on a free port, used for
COMMAND, then stopped and deleted; Redis likewise with redis-server. When PostgreSQL's
programs are missing, nothing runs and one message says what to install (and that
`make test-sqlite` runs meanwhile). A missing Redis only skips the tests that need a broker.

`system` makes sure the machine's own services answer on their standard ports, starting them
with the machine's commands when they do not (Debian: pg_ctlcluster; redis-server).
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
#: where Debian's postgresql packages keep initdb and pg_ctl (not on PATH)
DEBIAN_PG_BINDIRS = "/usr/lib/postgresql/*/bin"

MISSING_POSTGRES = """\
PostgreSQL is not answering at {url}
and its server programs (initdb, pg_ctl) are not installed here, so no test cluster can be
started. Install them — on Debian or Ubuntu: apt-get install postgresql — and run make test
again; or point DATABASE_URL at a PostgreSQL you have. Meanwhile `make test-sqlite` runs the
suite on SQLite (the PostgreSQL-only tests are skipped, and counted)."""


def say(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(host: str, port: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(host, port, timeout=0.5):
            return True
        time.sleep(0.2)
    return False


# --- PostgreSQL -------------------------------------------------------------------------------


def postgres_programs() -> tuple[str, str] | None:
    """(initdb, pg_ctl): from PATH, or where Debian's packages keep them when their
    postgresql-common wrappers are on PATH. None when they are not installed."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    if shutil.which("pg_ctlcluster") or shutil.which("pg_lsclusters"):
        for bindir in sorted(glob.glob(DEBIAN_PG_BINDIRS), reverse=True):
            initdb, pg_ctl = f"{bindir}/initdb", f"{bindir}/pg_ctl"
            if os.access(initdb, os.X_OK) and os.access(pg_ctl, os.X_OK):
                return initdb, pg_ctl
    return None


def _as_cluster_owner() -> tuple[list[str], int | None]:
    """PostgreSQL refuses to run as root: as root, run its programs as the `postgres` user."""
    if os.geteuid() != 0:
        return [], None
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        raise SystemExit(
            "services: running as root, PostgreSQL needs an unprivileged user to own its "
            "test cluster; create a 'postgres' user or run make test as another user."
        ) from None
    return ["runuser", "-u", "postgres", "--"], owner.pw_uid


@contextlib.contextmanager
def throwaway_postgres(url: str, programs: tuple[str, str]) -> Iterator[str]:
    """A PostgreSQL cluster of our own under var/ on a free port, for the block; stopped and
    deleted afterwards. Yields its URL (the same user and database name as `url`)."""
    initdb, pg_ctl = programs
    parts = urlsplit(url)
    user = parts.username or "postgres"
    port = free_port()
    VAR.mkdir(exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix=f"pg-{port}-", dir=VAR))
    prefix, uid = _as_cluster_owner()
    if uid is not None:
        os.chown(data, uid, -1)
    log = data / "server.log"
    say(
        f"no PostgreSQL answers at {parts.hostname}:{parts.port or 5432}; starting a "
        f"throwaway cluster in {data.relative_to(ROOT)} on 127.0.0.1:{port}"
    )
    try:
        subprocess.run(
            [*prefix, initdb, "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8",
             "--no-instructions"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off"
        )
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "start"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if not wait_for("127.0.0.1", port, 30):
            raise SystemExit(f"services: the test cluster did not start; see {log}")
        netloc = f"{user}@127.0.0.1:{port}"
        yield urlunsplit(parts._replace(netloc=netloc))
    except subprocess.CalledProcessError as exc:
        raise SystemExit(
            f"services: {Path(exc.cmd[len(prefix)]).name} failed: {exc.stderr.strip()}"
        ) from None
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        shutil.rmtree(data, ignore_errors=True)
        say(f"stopped the throwaway PostgreSQL on port {port} and removed its files")


# --- Redis ------------------------------------------------------------------------------------


@contextlib.contextmanager
def throwaway_redis(url: str, server: str) -> Iterator[str]:
    """A redis-server of our own on a free port, keeping nothing on disk, for the block."""
    parts = urlsplit(url)
    port = free_port()
    say(
        f"no Redis answers at {parts.hostname}:{parts.port or 6379}; starting one on "
        f"127.0.0.1:{port}"
    )
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if not wait_for("127.0.0.1", port, 15):
            raise SystemExit("services: the test Redis did not start")
        yield urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
    finally:
        process.terminate()
        process.wait(timeout=15)
        say(f"stopped the throwaway Redis on port {port}")


# --- commands ---------------------------------------------------------------------------------


def _host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def run(command: list[str]) -> int:
    """Run `command` with DATABASE_URL and REDIS_URL_FOR_TESTS pointing at services that
    answer, starting throwaway ones where needed."""
    database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    redis_url = os.environ.get("REDIS_URL_FOR_TESTS") or DEFAULT_REDIS_URL
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if database_url.startswith(("postgres://", "postgresql://")):
            if answers(*_host_port(database_url, 5432)):
                say(f"using the PostgreSQL at {urlsplit(database_url).netloc}")
            else:
                programs = postgres_programs()
                if programs is None:
                    print(MISSING_POSTGRES.format(url=database_url), file=sys.stderr)
                    return 3
                database_url = stack.enter_context(throwaway_postgres(database_url, programs))
        env["DATABASE_URL"] = database_url
        if not answers(*_host_port(redis_url, 6379)):
            server = shutil.which("redis-server")
            if server:
                redis_url = stack.enter_context(throwaway_redis(redis_url, server))
            else:
                say(
                    "no Redis answers and redis-server is not installed: the tests that need "
                    "a broker are skipped (apt-get install redis-server to run them)"
                )
        env["REDIS_URL_FOR_TESTS"] = redis_url
        child = subprocess.Popen(command, env=env)
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            return child.wait()


def system() -> int:
    """The machine's own PostgreSQL (5432) and Redis (6379) answer, started if need be."""
    if not answers("127.0.0.1", 5432):
        say("PostgreSQL is not answering on 127.0.0.1:5432; starting the machine's cluster")
        versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
        if not versions:
            say("no PostgreSQL cluster is installed (/etc/postgresql is empty)")
            return 1
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
        )
        if not wait_for("127.0.0.1", 5432, 30):
            say("PostgreSQL did not start: see /var/log/postgresql")
            return 1
    say("PostgreSQL answers on 127.0.0.1:5432")
    if not answers("127.0.0.1", 6379):
        say("Redis is not answering on 127.0.0.1:6379; starting it")
        subprocess.run(
            ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port",
             "6379", "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
             "--logfile", "/var/log/redis/ci.log"],
            check=False,
        )  # fmt: skip
        if not wait_for("127.0.0.1", 6379, 30):
            say("Redis did not start: see /var/log/redis/ci.log")
            return 1
    say("Redis answers on 127.0.0.1:6379")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    run_parser = sub.add_parser("run", help="run a command against services that answer")
    run_parser.add_argument("command", nargs=argparse.REMAINDER)
    sub.add_parser("system", help="make the machine's own PostgreSQL and Redis answer")
    args = parser.parse_args(argv)
    if args.what == "system":
        return system()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command, e.g. run -- pytest")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
