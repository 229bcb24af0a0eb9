"""Log masking catches a mobile number however it is typed (+86, spaces, dashes, brackets)
and an ID number with a lower-case check letter, also percent-encoded in an access-log
request line; amounts, dates, member numbers and counts stay readable
(portal/masking.py `mask_personal_numbers`, portal/logging.py `mask_log_text`)."""

from __future__ import annotations

import io
import logging

import pytest

from portal.logging import mask_log_text
from portal.masking import mask_personal_numbers

#: (as logged, as it must read): the middle four digits of a mobile hidden, as typed
MOBILES = [
    ("13900000001", "139****0001"),
    ("+8613900000001", "+86139****0001"),
    ("+86 139 0000 0001", "+86 139 **** 0001"),
    ("86-139-0000-0001", "86-139-****-0001"),
    ("139 0000 0001", "139 **** 0001"),
    ("139-0000-0001", "139-****-0001"),
    ("(+86) 13900000001", "(+86) 139****0001"),
    ("(+86)139-0000-0001", "(+86)139-****-0001"),
    ("tel: 13900000001.", "tel: 139****0001."),
    ("phone=13900000001&page=2", "phone=139****0001&page=2"),
    # percent-encoded, as runserver's access log prints the raw query string
    ("q=%2B8613900000001", "q=%2B86139****0001"),
    ("q=139%200000%200001", "q=139%20****%200001"),
    ("q=139+0000+0001", "q=139+****+0001"),
    ("q=%2B86+139+0000+0001", "q=%2B86+139+****+0001"),
    ("q=%28%2B86%29%2013900000001", "q=%28%2B86%29%20139****0001"),
    ("q=139%2D0000%2D0001", "q=139%2D****%2D0001"),
    ("q%3D13900000001", "q%3D139****0001"),
]

#: ID numbers: the region code and the last two stay
ID_NUMBERS = [
    ("110101199003071234", "110101**********34"),
    ("11010119900307123X", "110101**********3X"),
    ("11010119900307123x", "110101**********3x"),
    ("id 11010119900307123x.", "id 110101**********3x."),
    ("/members/11010119900307123x/", "/members/110101**********3x/"),
    ("q=11010119900307123x&page=1", "q=110101**********3x&page=1"),
    ("q%3D11010119900307123x", "q%3D110101**********3x"),
    ("q=%2011010119900307123x", "q=%20110101**********3x"),
]

#: what a log must keep readable, unchanged
READABLE = [
    "budget 1200000.00 consumed by grant 12345678 for M0000123",
    "amount 13900000001.50 credited",
    "member M13900000001 graded",
    "member MX000001 opened",
    "2026-11-26 13:00:00 run finished: 139 rows, 0000 errors",
    "business date 2026-12-03, 13900 members",
    "job 1733212345678 started",
    '"GET /members/?page=2&tier=GOLD HTTP/1.1" 200 13900',
    "consumed 1,390,000,000.01 of 2,000,000,000.00",
    "event app-7f3c at 2026-11-26T10:15:00+08:00",
]


@pytest.mark.parametrize(
    "logged, masked", MOBILES + ID_NUMBERS, ids=[t for t, _ in MOBILES + ID_NUMBERS]
)
def test_a_personal_number_in_a_log_line_is_masked(logged, masked):
    assert mask_log_text(logged) == masked
    assert mask_personal_numbers(logged, broad=False) == masked


@pytest.mark.parametrize("line", READABLE)
def test_amounts_dates_member_numbers_and_counts_stay_readable(line):
    assert mask_log_text(line) == line


@pytest.mark.parametrize("logged, masked", MOBILES, ids=[t for t, _ in MOBILES])
def test_the_broad_masking_of_feed_rows_hides_the_typed_mobiles_too(logged, masked):
    assert mask_personal_numbers(logged) == masked


@pytest.fixture
def server_log():
    """What the `django.server` handler (runserver's access log) writes, filter included."""
    (handler,) = [
        h for h in logging.getLogger("django.server").handlers if h.name == "django.server"
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        yield stream
    finally:
        handler.setStream(previous)


@pytest.mark.parametrize(
    "query",
    [
        "q=%2B8613900000001",
        "q=139%200000%200001",
        "q=139+0000+0001",
        "q=%2B86%20139%200000%200001",
        "q=11010119900307123x",
    ],
)
def test_the_access_log_line_of_a_search_is_masked(server_log, query):
    logging.getLogger("django.server").info(
        '"%s" %s %s', f"GET /members/?{query}&page=2 HTTP/1.1", "200", "13900"
    )

    line = server_log.getvalue()
    assert "/members/?q=" in line and "&page=2" in line and " 200 13900" in line
    assert "0000%200001" not in line and "0000+0001" not in line
    assert "13900000001" not in line and "19900307" not in line
