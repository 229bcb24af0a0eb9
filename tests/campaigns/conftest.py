"""Fixtures of the campaign tests: a system client that posts events, and event builders."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from portal.choices import Role

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def today() -> date:
    return datetime.now(SHANGHAI).date()


def at(day: date, hour: int = 10) -> str:
    """An ISO timestamp on that Shanghai day, never later than now (today's events happen
    before the test runs, whatever the time of day)."""
    moment = datetime.combine(day, time(hour), tzinfo=SHANGHAI)
    now = datetime.now(SHANGHAI)
    if moment > now:
        moment = max(datetime.combine(day, time(0), tzinfo=SHANGHAI), now)
    return moment.isoformat()


def event(member, *, type="SIGN_IN", day: date | None = None, amount=None, event_id=None, hour=10):
    body = {
        "event_id": event_id or f"ev-{next(_ids)}",
        "member_no": member if isinstance(member, str) else member.member_no,
        "type": type,
        "occurred_at": at(day or today(), hour),
        "channel": "MOBILE",
    }
    if amount is not None:
        body["amount"] = amount
    return body


@pytest.fixture
def system_user(make_user):
    return make_user(Role.SYSTEM, username="mobile_banking", branch="HO")


@pytest.fixture
def post_events(api_client_for, system_user):
    """POST a list of events as mobile banking; returns the response."""
    client = api_client_for(system_user)

    def post(*events, expect: int = 200):
        response = client.post("/api/v1/events/", {"events": list(events)}, format="json")
        assert response.status_code == expect, response.content
        return response

    return post
