"""Request context of the field-level audit trail (django-pghistory)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import connection
from pghistory.middleware import HistoryMiddleware


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # an IPv4 client seen through an IPv6 socket (::ffff:10.1.2.3) is that IPv4 client
    return getattr(address, "ipv4_mapped", None) or address


@lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return tuple(ipaddress.ip_network(proxy.strip(), strict=False) for proxy in proxies)


def _is_trusted_proxy(address) -> bool:
    return any(
        address.version == network.version and address in network
        for network in _networks(tuple(settings.TRUSTED_PROXIES))
    )


def client_ip(request) -> str | None:
    """The address a request came from (None when unknown): what the audit trail records
    and what login throttling (django-axes, `AXES_CLIENT_IP_CALLABLE`) counts by.

    `X-Forwarded-For` is read only when the peer (REMOTE_ADDR) is one of our reverse
    proxies (`TRUSTED_PROXIES`): anyone else could write anything there. Each proxy appends
    the address it was reached from, so the chain is read from the right, past our own
    proxies; the first other address is the client. A malformed entry ends the reading: the
    last address a trusted proxy vouched for is kept.

    Not django-ipware: its trusted-proxy list is matched against the header's own entries,
    never against the peer, so a client that reaches the portal directly could forge the
    whole chain.
    """
    peer = request.META.get("REMOTE_ADDR") or None
    address = _address(peer) if peer else None
    if address is None or not _is_trusted_proxy(address):
        return peer
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    for entry in reversed(forwarded.split(",") if forwarded else []):
        hop = _address(entry)
        if hop is None:
            break
        address = hop
        if not _is_trusted_proxy(hop):
            break
    return str(address)


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
