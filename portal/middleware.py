"""Request context of the field-level audit trail (django-pghistory)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from pghistory.middleware import HistoryMiddleware


def client_ip(request) -> str | None:
    """The address a request came from, as the audit trail records it (None when unknown)."""
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware(HistoryMiddleware):
    """pghistory's middleware: every write of a request is recorded with the request's user
    and URL, and here also the client address (as `AuditEntry.ip` is).

    On SQLite it stands aside: pghistory prepends PostgreSQL `set_config` calls to every
    statement, which SQLite cannot run, and SQLite has no triggers to record anything.
    """

    def get_context(self, request) -> dict[str, Any]:
        return {**super().get_context(request), "ip": client_ip(request)}

    def __call__(self, request):
        if connection.vendor != "postgresql":
            return self.get_response(request)
        return super().__call__(request)
