"""`make test`'s service discovery (scripts/services.py): a PostgreSQL that answers is used; when
nothing answers it starts a throwaway cluster of its own and stops it afterwards; without
PostgreSQL's server programs it says what to install and runs nothing."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "services.py"

spec = importlib.util.spec_from_file_location("services_script", SCRIPT)
services = importlib.util.module_from_spec(spec)
spec.loader.exec_module(services)

#: what the command run against the services prints: the server's version, through the URL
#: it was given
PROBE = (
    "import os, psycopg; url = os.environ['DATABASE_URL'].rsplit('/', 1)[0] + '/postgres'; "
    "print('SERVER', psycopg.connect(url).info.server_version, os.environ['DATABASE_URL'])"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def run_script(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=ROOT,
    )


@pytest.mark.integration
@pytest.mark.skipif(
    services.postgres_programs() is None, reason="needs PostgreSQL's server programs"
)
def test_with_nothing_listening_it_starts_its_own_postgresql_and_stops_it_afterwards():
    port = free_port()
    assert not listening(port)
    before = set((ROOT / "var").glob("pg-*"))
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/portal",
        # a Redis that answers is used as it is: this test is about PostgreSQL
        "REDIS_URL_FOR_TESTS": os.environ.get("REDIS_URL_FOR_TESTS", services.DEFAULT_REDIS_URL),
    }

    result = run_script("run", "--", sys.executable, "-c", PROBE, env=env)

    assert result.returncode == 0, result.stderr
    assert f"no PostgreSQL answers at 127.0.0.1:{port}" in result.stderr
    assert "starting a throwaway cluster in var/pg-" in result.stderr
    server_line = next(line for line in result.stdout.splitlines() if line.startswith("SERVER"))
    used_url = server_line.split()[-1]
    used_port = int(used_url.split(":")[-1].split("/")[0])
    assert used_port != port and used_url.endswith("/portal")
    assert "stopped the throwaway PostgreSQL" in result.stderr
    assert not listening(used_port)  # stopped
    assert set((ROOT / "var").glob("pg-*")) == before  # and its files removed


def test_without_postgresqls_programs_it_says_what_to_install_and_runs_nothing(tmp_path):
    port = free_port()
    marker = tmp_path / "ran"
    env = {
        "PATH": str(tmp_path),  # no initdb, pg_ctl, pg_ctlcluster or redis-server here
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/portal",
        "REDIS_URL_FOR_TESTS": f"redis://127.0.0.1:{free_port()}/15",
    }

    result = run_script("run", "--", sys.executable, "-c", f"open({str(marker)!r}, 'w')", env=env)

    assert result.returncode == 3
    assert f"PostgreSQL is not answering at postgres://postgres@127.0.0.1:{port}/portal" in (
        result.stderr
    )
    assert "apt-get install postgresql" in result.stderr
    assert "make test-sqlite" in result.stderr
    assert not marker.exists()


def test_a_postgresql_that_answers_is_used_as_it_is(tmp_path):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        env = {
            **os.environ,
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/portal",
            "REDIS_URL_FOR_TESTS": f"redis://127.0.0.1:{port}/15",  # "answers" too
        }

        result = run_script(
            "run",
            "--",
            sys.executable,
            "-c",
            "import os; print(os.environ['DATABASE_URL'])",
            env=env,
        )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"postgres://postgres@127.0.0.1:{port}/portal"
    assert "throwaway" not in result.stderr
