"""What every benchmark in bench/ needs before it starts: its own PostgreSQL database and a
production-like Django (imported by the scripts as `bench_common`; bench/ is on sys.path when
a script runs as `python bench/<name>.py`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit


def ensure_database(url: str, progress: Callable[[str], None]) -> None:
    """Create the database of `url` if it does not exist (through the `postgres` database)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            progress(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def django_setup(url: str) -> None:
    """Environment first, then django.setup() (in the parent and in every worker process).
    Production-like: DEBUG off, so no query log grows in memory."""
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DEBUG"] = "false"
    import django

    django.setup()
