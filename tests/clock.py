"""Moving the business clock in tests."""

from __future__ import annotations

from benefits import services

#: the benefits modules that read the business clock (budgets open on a date, grants expire)
BENEFITS_CLOCK_READERS = ("budgets", "grants", "manual")


def benefits_today(monkeypatch, day) -> None:
    """Make "today" `day` for the benefits services (budget periods, grant expiry)."""
    for name in BENEFITS_CLOCK_READERS:
        monkeypatch.setattr(getattr(services, name), "today_in_shanghai", lambda: day)
