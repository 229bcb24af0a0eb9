"""Malformed events stand on their own (API.md, `POST /api/v1/events/`): whatever shape one
event arrives in — NUL or other control characters, a JSON type its field does not take,
1 MB strings, amounts such as 1e400 — it is refused with its index and reason, the rest of
the batch is taken, a retry gives the same answer, and nothing unsafe is echoed or stored."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone, translation
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.events import ECHO_MAX_LENGTH, MAX_LENGTH, event_id_echo, event_parse
from campaigns.models import EventBatch, MemberEvent
from members.models import PointsEntry
from tests.factories import MemberFactory, TaskFactory

from .conftest import event

pytestmark = pytest.mark.django_db

URL = "/api/v1/events/"
MB = 1024 * 1024
NUL_REASON = "must not contain NUL, control or other non-printing characters"
NOT_A_DECIMAL = 'must be a decimal string such as "20000.00"'
NOT_2_DECIMALS = 'must be a number with at most 2 decimals, e.g. "20000.00"'
TOO_LARGE = "must be less than 100,000,000,000,000"


@pytest.fixture
def send(api_client_for, system_user):
    """POST a body given as JSON text (so that 1e400 or a NUL goes as written), in English."""
    client = api_client_for(system_user)
    client.raise_request_exception = False  # a 500 is an answer to assert on, not a crash

    def post(text: str):
        return client.post(URL, text, content_type="application/json", HTTP_ACCEPT_LANGUAGE="en")

    return post


def _body(events: list, raw: dict[str, str] | None = None) -> str:
    """The batch as JSON text; each placeholder string in `raw` is replaced by its JSON
    text as written (numbers JSON can carry but Python's json module would not write)."""
    text = json.dumps({"events": events})
    for placeholder, literal in (raw or {}).items():
        text = text.replace(json.dumps(placeholder), literal)
    return text


def _assert_safe_answer(response) -> None:
    assert response.status_code == 200, response.content[:500]
    assert b"\x00" not in response.content and b"\\u0000" not in response.content


# --- the finding: 999 good events and one malformed ---------------------------------------------


@pytest.mark.parametrize(
    "field, value, reason",
    [
        (
            "event_id",
            "bad\u0000id",
            "must not contain NUL, control or other non-printing characters",
        ),
        ("type", ["SIGN_IN"], "must be a string, not a JSON array"),
        ("type", {"SIGN_IN": 1}, "must be a string, not a JSON object"),
    ],
    ids=["nul-in-event_id", "type-list", "type-object"],
)
def test_one_malformed_event_among_999_good_is_refused_alone_and_again_on_retry(
    send, field, value, reason
):
    member = MemberFactory()
    TaskFactory(reward_points=100)
    events = [event(member, event_id=f"good-{n}") for n in range(1000)]
    events[500] = {**events[500], field: value}
    body = _body(events)

    first = send(body)
    retry = send(body)

    _assert_safe_answer(first)
    _assert_safe_answer(retry)
    refused_id = event_id_echo(events[500]["event_id"])
    rejected = [{"index": 500, "event_id": refused_id, "errors": {field: [reason]}}]
    assert first.json() == {"accepted": 999, "duplicates": 0, "rejected": rejected}
    assert retry.json() == {"accepted": 0, "duplicates": 999, "rejected": rejected}
    assert MemberEvent.objects.count() == 999
    assert not MemberEvent.objects.filter(event_id="good-500").exists()
    member.refresh_from_db()
    assert member.points_balance == 100  # the task's reward, once
    assert PointsEntry.objects.filter(member=member).count() == 1
    batches = list(EventBatch.objects.order_by("pk"))
    assert [(b.received, b.accepted, b.duplicates, b.rejected) for b in batches] == [
        (1000, 999, 0, 1),
        (1000, 0, 999, 1),
    ]
    assert [b.rejections for b in batches] == [rejected, rejected]


# --- each malformed shape, refused on its own ---------------------------------------------------


def _too_long(field: str, length: int) -> str:
    return f"must be at most {MAX_LENGTH[field]} characters long; {length} were sent"


@pytest.mark.parametrize(
    "field, value, reason",
    [
        # a JSON type the field does not take
        ("event_id", 12, "must be a string, not a JSON number"),
        ("event_id", ["a"], "must be a string, not a JSON array"),
        ("member_no", {"no": "M1"}, "must be a string, not a JSON object"),
        ("member_no", True, "must be a string, not a JSON boolean"),
        ("type", None, "must be one of"),
        ("type", 1, "must be a string, not a JSON number"),
        ("occurred_at", None, "is required"),
        ("occurred_at", 1764123300, "must be a string, not a JSON number"),
        ("occurred_at", ["2026-11-26T10:15:00+08:00"], "must be a string, not a JSON array"),
        ("channel", [], "must be a string, not a JSON array"),
        ("channel", {}, "must be a string, not a JSON object"),
        ("channel", 0, "must be a string, not a JSON number"),
        ("channel", False, "must be a string, not a JSON boolean"),
        ("amount", ["1.00"], NOT_A_DECIMAL),
        ("amount", {"value": "1.00"}, NOT_A_DECIMAL),
        ("amount", True, NOT_A_DECIMAL),
        ("amount", "NaN", NOT_2_DECIMALS),
        ("amount", "Infinity", NOT_2_DECIMALS),
        ("amount", "RAW:1e400", TOO_LARGE),
        ("amount", "RAW:-1e400", "must not be negative"),
        ("amount", "RAW:1e-999999999", NOT_2_DECIMALS),
        ("amount", "RAW:1e999999999", TOO_LARGE),
        ("amount", "RAW:100000000000000", TOO_LARGE),
        ("amount", "RAW:123.456", NOT_2_DECIMALS),
        # NUL and other control characters
        ("member_no", "M\u00001", NUL_REASON),
        ("type", "SIGN_IN\u0000", NUL_REASON),
        ("occurred_at", "2026-11-26T10:15:00+08:00\u0000", NUL_REASON),
        ("channel", "MOBILE\u0000", NUL_REASON),
        ("amount", "12.00\u0000", NUL_REASON),
        ("amount", "\u001f12.00", NUL_REASON),
        ("event_id", "ok\u202eid", NUL_REASON),  # a bidi override
        # strings beyond the field's bound, up to 1 MB
        ("event_id", "e" * 65, _too_long("event_id", 65)),
        ("member_no", "M" * MB, _too_long("member_no", MB)),
        ("type", "SIGN_IN" * (MB // 7), _too_long("type", 7 * (MB // 7))),
        ("occurred_at", "2026-11-26T10:15:00+08:00" + "0" * MB, _too_long("occurred_at", 25 + MB)),
        ("channel", "M" * MB, _too_long("channel", MB)),
        ("amount", "1" * MB, _too_long("amount", MB)),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_each_malformed_field_is_refused_with_its_reason_and_the_others_taken(
    send, field, value, reason
):
    member = MemberFactory()
    bad = event(member, event_id="bad-1")
    raw = {}
    if isinstance(value, str) and value.startswith("RAW:"):
        raw[value] = value.removeprefix("RAW:")
    bad[field] = value

    response = send(_body([event(member), bad, event(member)], raw))

    _assert_safe_answer(response)
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    (refused,) = body["rejected"]
    assert refused["index"] == 1
    assert refused["event_id"] == event_id_echo(bad["event_id"])
    assert list(refused["errors"]) == [field]
    assert refused["errors"][field][0].startswith(reason), refused["errors"]
    assert EventBatch.objects.get().rejections == body["rejected"]


def test_a_refused_event_id_is_echoed_and_kept_safe_nul_replaced_and_cut(send):
    member = MemberFactory()
    huge = "x\u0000" + "y" * MB
    response = send(_body([{**event(member), "event_id": huge}, event(member)]))

    _assert_safe_answer(response)
    (refused,) = response.json()["rejected"]
    assert refused["event_id"] == "x\ufffd" + "y" * (ECHO_MAX_LENGTH - 3) + "…"
    assert len(refused["event_id"]) == ECHO_MAX_LENGTH
    assert EventBatch.objects.get().rejections == [refused]  # stored as answered


@pytest.mark.parametrize(
    "item",
    [None, True, 7, "an event", [], [event("M1")]],
    ids=["null", "true", "number", "string", "empty-list", "list-of-an-event"],
)
def test_an_event_that_is_not_an_object_is_refused_alone(send, item):
    member = MemberFactory()
    response = send(_body([event(member), item]))

    _assert_safe_answer(response)
    assert response.json() == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": [
            {
                "index": 1,
                "event_id": None,
                "errors": {"non_field_errors": ["must be a JSON object"]},
            }
        ],
    }


def test_unknown_keys_of_an_event_are_ignored_never_stored(send):
    member = MemberFactory()
    extra = {**event(member, event_id="extra-1"), "note\u0000": "x\u0000", "nested": [{"a": {}}]}

    response = send(_body([extra]))

    _assert_safe_answer(response)
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert MemberEvent.objects.get().event_id == "extra-1"


def test_an_empty_list_is_an_empty_answer(send):
    response = send(_body([]))
    assert response.status_code == 200
    assert response.json() == {"accepted": 0, "duplicates": 0, "rejected": []}


@pytest.mark.parametrize(
    "text", ['{"events": null}', '{"events": 1}', '"events"', "null", '{"events": {"0": {}}}']
)
def test_a_body_without_a_list_of_events_is_a_400_json_error(send, text):
    response = send(text)
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_batch" and response.json()["detail"]


def test_more_than_1000_malformed_events_is_413_not_a_refusal_each(send):
    response = send(_body([{"type": ["x"]}] * 1001))
    assert response.status_code == 413
    assert response.json()["code"] == "batch_too_large"
    assert not EventBatch.objects.exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("event_id", "\ud800"),  # a lone surrogate: JSON can carry it, UTF-8 cannot
        ("amount", float("nan")),  # NaN and Infinity as Python's json module reads them
        ("amount", float("inf")),
        ("amount", Decimal("NaN")),
        ("amount", Decimal("-Infinity")),
        ("amount", 10**4000),
        ("occurred_at", "9999-12-31T23:59:59-23:59"),
    ],
    ids=repr,
)
def test_event_parse_refuses_values_only_a_lenient_json_reader_gives(field, value):
    now = timezone.now()
    raw = {**event("M1", event_id="p-1"), field: value}
    with translation.override("en"):
        refusal = event_parse(3, raw, now)
    assert list(refusal.errors) == [field]
    assert refusal.event_id in ("p-1", "\ufffd")
    refusal.event_id.encode()  # echoable as UTF-8


# --- fuzz: generated malformed events mixed with good ones --------------------------------------


@pytest.fixture
def reward_task():
    """Sign in once: 100 points (one task for every example of the fuzz test)."""
    return TaskFactory(reward_points=100)


_ids = itertools.count(1)
_UNSAFE = ["\x00", "\x01", "\t", "\n", "\x1b", "\x1f", "\x7f", "\x85", "\u200b", "\u202e", "\ufeff"]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(_UNSAFE), max_size=12)
)
_json_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
_not_a_string = _json_values.filter(lambda value: not isinstance(value, str))


@st.composite
def _with_unsafe_character(draw, valid: str) -> str:
    at = draw(st.integers(min_value=0, max_value=len(valid)))
    return valid[:at] + draw(st.sampled_from(_UNSAFE)) + valid[at:]


def _too_long_text(field: str, valid: str):
    return st.integers(min_value=1, max_value=300).map(
        lambda extra: (valid * (MAX_LENGTH[field] // len(valid) + 2))[: MAX_LENGTH[field] + extra]
    )


def _bad_text(field: str, valid: str, *, optional: bool = False):
    """Values a text field refuses: another JSON type, a control character, too long."""
    wrong_type = _not_a_string.filter(lambda v: v is not None) if optional else _not_a_string
    return wrong_type | _with_unsafe_character(valid) | _too_long_text(field, valid)


_RAW_AMOUNTS = ["1e400", "-1e400", "1e-400", "1e999999999", "123.456", "-0.01", "1E14"]
BAD_VALUES = {
    "event_id": _bad_text("event_id", "ev-1"),
    "member_no": _bad_text("member_no", "M0000001"),
    "type": _bad_text("type", "SIGN_IN"),
    "occurred_at": _bad_text("occurred_at", "2026-11-26T10:15:00+08:00"),
    "channel": _bad_text("channel", "MOBILE", optional=True),
    "amount": (
        st.booleans()
        | st.lists(_json_values, max_size=3)
        | st.dictionaries(st.text(max_size=4), _json_values, max_size=3)
        | st.integers(max_value=-1)
        | st.integers(min_value=10**14, max_value=10**40)
        | st.sampled_from(["NaN", "Infinity", "-Infinity", "1e5", "0x10", "1,000.00"])
        | _with_unsafe_character("12.50")
        | _too_long_text("amount", "1")
        | st.sampled_from(_RAW_AMOUNTS).map(lambda literal: f"RAW:{literal}")
    ),
}

_good = st.builds(
    lambda extra: ("good", extra),
    st.dictionaries(
        st.text(max_size=6).filter(lambda key: key not in BAD_VALUES), _json_values, max_size=2
    ),
)
_bad_field = st.sampled_from(sorted(BAD_VALUES)).flatmap(
    lambda field: st.tuples(st.just(field), BAD_VALUES[field])
)
_bad = st.builds(lambda changes: ("bad", changes), st.lists(_bad_field, min_size=1, max_size=3))
_not_an_object = st.builds(
    lambda item: ("not_object", item),
    _json_values.filter(lambda value: not isinstance(value, dict)),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=st.lists(_good | _bad | _not_an_object, min_size=1, max_size=8))
def test_fuzz_malformed_events_never_sink_the_good_ones(send, reward_task, plan):
    """Every good event accepted exactly once (and its reward once), every bad one refused
    with its index and the reasons of exactly the fields made bad, counts reconciling, the
    same answer on retry, never a 5xx."""
    member = MemberFactory()  # a fresh member each example: its reward is this example's
    events, raw, good_ids, bad = [], {}, [], {}
    for index, (kind, detail) in enumerate(plan):
        if kind == "not_object":
            events.append(detail)
            bad[index] = {"non_field_errors"}
            continue
        item = event(member, event_id=f"fz-{next(_ids)}")
        if kind == "good":
            events.append({**detail, **item})  # unknown keys are ignored
            good_ids.append(item["event_id"])
            continue
        for field, value in detail:
            if isinstance(value, str) and value.startswith("RAW:"):
                literal = value.removeprefix("RAW:")
                value = f"RAW{len(raw)}:{literal}"  # a placeholder of its own
                raw[value] = literal
            item[field] = value
        events.append(item)
        bad[index] = {field for field, _value in detail}
    body = _body(events, raw)

    first, retry = send(body), send(body)

    for response, accepted in ((first, len(good_ids)), (retry, 0)):
        _assert_safe_answer(response)
        answer = response.json()
        assert answer["accepted"] == accepted
        assert answer["duplicates"] == len(good_ids) - accepted
        assert answer["accepted"] + answer["duplicates"] + len(answer["rejected"]) == len(events)
        rejected = {r["index"]: r for r in answer["rejected"]}
        assert set(rejected) == set(bad)
        for index, fields in bad.items():
            assert set(rejected[index]["errors"]) == fields, rejected[index]
            assert all(rejected[index]["errors"].values())
    assert first.json()["rejected"] == retry.json()["rejected"]
    stored = EventBatch.objects.order_by("-pk")[:2]
    assert [b.rejections for b in stored] == [retry.json()["rejected"], first.json()["rejected"]]
    assert sorted(MemberEvent.objects.filter(member=member).values_list("event_id", flat=True)) == (
        sorted(good_ids)
    )
    member.refresh_from_db()
    assert member.points_balance == (100 if good_ids else 0)
    assert PointsEntry.objects.filter(member=member).count() == (1 if good_ids else 0)


def test_events_older_than_the_window_are_refused_not_a_crash(send):
    member = MemberFactory()
    old = (timezone.now() - timedelta(days=10_000)).isoformat()
    response = send(_body([{**event(member), "occurred_at": old}]))
    _assert_safe_answer(response)
    assert "days old" in response.json()["rejected"][0]["errors"]["occurred_at"][0]
