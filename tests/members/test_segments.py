"""Segments: saved rules over member fields, validated before they are saved, with a live
size."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from members.models import Member
from members.segments import segment_filter, segment_q, segment_rules_validate
from tests.factories import SHANGHAI, MemberFactory, SegmentFactory

pytestmark = pytest.mark.django_db

ON = date(2026, 11, 26)


def members_in(rules) -> set[str]:
    return set(
        Member.objects.filter(segment_q(segment_rules_validate(rules), on=ON)).values_list(
            "member_no", flat=True
        )
    )


def test_stage_and_days_since_active_together(org):
    MemberFactory(member_no="D1", lifecycle_stage="DORMANT", last_active_on=date(2026, 6, 1))
    MemberFactory(member_no="D2", lifecycle_stage="DORMANT", last_active_on=date(2026, 10, 1))
    MemberFactory(member_no="A1", lifecycle_stage="ACTIVE", last_active_on=date(2026, 6, 1))

    assert members_in(
        [
            {"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]},
            {"field": "days_since_active", "op": "gte", "value": 90},
        ]
    ) == {"D1"}


def test_days_since_active_falls_back_to_registration():
    MemberFactory(
        member_no="N1", last_active_on=None, registered_at=datetime(2026, 1, 5, tzinfo=SHANGHAI)
    )
    MemberFactory(
        member_no="N2", last_active_on=None, registered_at=datetime(2026, 11, 20, tzinfo=SHANGHAI)
    )
    assert members_in([{"field": "days_since_active", "op": "gte", "value": 30}]) == {"N1"}


def test_branch_includes_sub_branches_and_not_in_excludes(org):
    MemberFactory(member_no="S1", branch=org["B01S1"])
    MemberFactory(member_no="S2", branch=org["B02S1"])
    assert members_in([{"field": "branch", "op": "in", "value": ["B01"]}]) == {"S1"}
    assert members_in([{"field": "branch", "op": "not_in", "value": ["B01"]}]) == {"S2"}


def test_age_counts_whole_years_on_the_business_date():
    MemberFactory(member_no="Y60", birth_date=date(1966, 11, 26))  # 60 today
    MemberFactory(member_no="Y59", birth_date=date(1966, 11, 27))  # 60 tomorrow
    assert members_in([{"field": "age", "op": "gte", "value": 60}]) == {"Y60"}
    assert members_in([{"field": "age", "op": "lt", "value": 60}]) == {"Y59"}
    assert members_in([{"field": "age", "op": "eq", "value": 59}]) == {"Y59"}


def test_mada_is_compared_in_cny():
    MemberFactory(member_no="R1", tier_basis=5_000_000)  # 50,000.00 CNY
    MemberFactory(member_no="R2", tier_basis=4_999_999)
    assert members_in([{"field": "mada", "op": "gte", "value": "50000.00"}]) == {"R1"}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"field": "tier"}, "list"),
        ([{"field": "shoe_size", "op": "gte", "value": 1}], "unknown field shoe_size"),
        ([{"field": "tier", "op": "gte", "value": ["GOLD"]}], "operator gte"),
        ([{"field": "tier", "op": "in", "value": ["PLATINUM"]}], "PLATINUM"),
        ([{"field": "lifecycle_stage", "op": "in", "value": ["SLEEPY"]}], "SLEEPY"),
        ([{"field": "points_balance", "op": "gte", "value": "many"}], "number"),
        ([{"field": "age", "op": "gte", "value": 30.5}], "whole"),
        ([{"field": "branch", "op": "in", "value": []}], "non-empty"),
        ([{"field": "tier", "op": "in"}], "exactly field, op and value"),
    ],
)
def test_bad_rules_are_refused_naming_the_condition(rules, message):
    with translation.override("en"), pytest.raises(ValidationError) as caught:
        segment_rules_validate(rules)
    assert message in " ".join(caught.value.messages)


def test_segment_size_is_live():
    segment = SegmentFactory(rules=[{"field": "lifecycle_stage", "op": "in", "value": ["DORMANT"]}])
    MemberFactory(lifecycle_stage="DORMANT")
    assert Member.objects.filter(segment_filter(segment, on=ON)).count() == 1
    MemberFactory(lifecycle_stage="DORMANT")
    assert Member.objects.filter(segment_filter(segment, on=ON)).count() == 2
