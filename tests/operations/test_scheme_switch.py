"""A tier scheme switch, end to end, as the people who run it do it (issue 14: "Activating
DEFAULT_POINTS through the inbox: no warning that the new tiers have no entitlements …; an
active manual override vanished …; a pending override made under the old scheme was still
approvable …; the dashboard showed 1,970 upgrades"):

simulate → propose with an effective night → the approval page shows the migration and the
tiers without entitlements, and refuses → the operator maps entitlements → approve → until
the night every page grades by the old scheme and says when the new one takes effect → the
night: every member on the new scheme (SCHEME_CHANGE), grants by the mapped tiers, manual
tiers ended and listed on the workbench, requests waiting withdrawn with the reason."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from benefits.models import BenefitGrant, TierEntitlement
from benefits.services.scheme_entitlements import scheme_entitlements_monthly_cost
from members.choices import OverrideStatus, SchemeStatus, TierChangeCause
from members.models import Member, Tier, TierChange, TierOverride, TierScheme
from members.services import tier_override_request, tier_recompute, tier_simulate
from operations.nightly import nightly_run
from portal.choices import ApprovalStatus, Role
from portal.clock import today_in_shanghai
from portal.models import ApprovalRequest
from tests.approvals import decide_pending
from tests.factories import BenefitFactory
from tests.schemes import members_with_daily_demand

pytestmark = pytest.mark.django_db(transaction=False)

TODAY = today_in_shanghai()
NIGHT = TODAY + timedelta(days=1)  # the default effective night

#: member no → (daily DEMAND balance in yuan, what MADA grades, what points grade)
CUSTOMERS = {
    "RICH": (600_000, "SUNFLOWER", "STAR5"),  # 8,100 points
    "MID": (80_000, "GOLD", "STAR4"),  # 1,080 points
    "LOW": (3_000, "STANDARD", "PRE"),  # 40 points
    "NIL": (0, "STANDARD", "NONE"),
    "MANUAL": (3_000, "STANDARD", "PRE"),  # holds a manual 金卡
    "ASKED": (80_000, "GOLD", "STAR4"),  # a manual 金葵花 waits for approval
}
#: new tier ← old tier whose entitlements it takes; the others get none
MAPPING = {"STAR4": "GOLD", "STAR5": "SUNFLOWER", "STAR6": "SUNFLOWER", "STAR7": "SUNFLOWER"}


def tier(scheme: str, code: str) -> Tier:
    return Tier.objects.get(scheme__code=scheme, code=code)


@pytest.fixture
def bank(org, make_user):
    people = {
        "operator": make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO"),
        "checker": make_user(Role.PRODUCT_OPERATOR, username="checker", branch="HO"),
        "am": make_user(Role.ACCOUNT_MANAGER, username="am", branch="B01S1"),
        "bm": make_user(Role.BRANCH_MANAGER, username="bm", branch="B01"),
    }
    members_with_daily_demand(
        {member_no: daily for member_no, (daily, _m, _p) in CUSTOMERS.items()},
        branch=org["B01S1"],
        account_manager=people["am"],
        dates=(TODAY, NIGHT),
    )
    lounge = BenefitFactory(code="LOUNGE", name="机场贵宾厅", unit_cost_fen=100_00)
    gift = BenefitFactory(code="GIFT", name="生日礼", unit_cost_fen=50_00)
    TierEntitlement.objects.create(
        benefit=lounge, tier=tier("DEFAULT_MADA", "GOLD"), quantity=2, period="MONTH"
    )
    TierEntitlement.objects.create(
        benefit=gift, tier=tier("DEFAULT_MADA", "SUNFLOWER"), quantity=1, period="MONTH"
    )
    tier_recompute(business_date=TODAY)  # graded by MADA, the active scheme
    expires = TODAY + timedelta(days=90)
    manual = tier_override_request(
        member=Member.objects.get(member_no="MANUAL"),
        tier=tier("DEFAULT_MADA", "GOLD"),
        reason="重要客户",
        expires_on=expires,
        actor=people["am"],
    )
    decide_pending(manual, "TIER_OVERRIDE", approve=True, actor=people["bm"])
    tier_override_request(
        member=Member.objects.get(member_no="ASKED"),
        tier=tier("DEFAULT_MADA", "SUNFLOWER"),
        reason="资产即将转入",
        expires_on=expires,
        actor=people["am"],
    )
    return people


def tiers_now() -> dict[str, str]:
    return dict(Member.objects.values_list("member_no", "tier__code"))


def impact_of(client, approval) -> str:
    return client.get(f"/approvals/{approval.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_a_scheme_switch_carries_everything_across_on_its_night(client, bank):
    points = TierScheme.objects.get(code="DEFAULT_POINTS")
    assert tiers_now() == {
        "RICH": "SUNFLOWER",
        "MID": "GOLD",
        "LOW": "STANDARD",
        "NIL": "STANDARD",
        "MANUAL": "GOLD",
        "ASKED": "GOLD",
    }

    # simulate and propose, from the scheme's page, as the product operator
    client.force_login(bank["operator"])
    simulated = client.get(f"/members/schemes/{points.pk}/simulate/")
    star5 = points.tiers.get(code="STAR5")
    assert simulated.status_code == 200 and star5.name in simulated.content.decode()  # by name
    proposed = client.post(
        f"/admin/members/tierscheme/{points.pk}/propose/",
        {"_form_submitted": "on", "effective_on": NIGHT.isoformat()},
    )
    assert proposed.status_code == 302
    approval = ApprovalRequest.objects.get(kind="TIER_SCHEME_ACTIVATION", status="PENDING")

    # the checker reads the migration and the tiers without entitlements; approving is refused
    client.force_login(bank["checker"])
    page = impact_of(client, approval)
    assert f"the night of {NIGHT.isoformat()}" in page
    # tiers by their English names on an English page
    assert "From Gold" in page and "4 stars 2" in page  # MID and ASKED; MANUAL's Gold is manual
    assert "From Sunflower" in page and "5 stars 1" in page
    assert "Cannot be approved yet" in page and "No entitlement decision" in page
    # … with the simulation and the decisions a click away
    assert f'href="/members/schemes/{points.pk}/simulate/"' in page
    assert f'href="/admin/benefits/tierentitlement/scheme/{points.pk}/"' in page
    refused = client.post(
        f"/approvals/{approval.pk}/decide/", {"decision": "approve"}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert refused.status_code == 302
    assert TierScheme.objects.get(pk=points.pk).status == SchemeStatus.PENDING

    # the operator decides the new tiers' entitlements on their page
    client.force_login(bank["operator"])
    old = {t.code: t.pk for t in Tier.objects.filter(scheme__code="DEFAULT_MADA")}
    form = {
        f"t_{t.pk}": f"MAP:{old[MAPPING[t.code]]}" if t.code in MAPPING else "NONE"
        for t in points.tiers.all()
    }
    saved = client.post(f"/admin/benefits/tierentitlement/scheme/{points.pk}/", form)
    assert saved.status_code == 302

    # the checker sees the cost before and after, and the manual tiers that end, and approves
    client.force_login(bank["checker"])
    page = impact_of(client, approval)
    assert "Cannot be approved yet" not in page
    # now: 金卡 ×3 (MID, ASKED, MANUAL) × 2 × ¥100 + 金葵花 × ¥50;
    # then: 四星 ×2 × 2 × ¥100 + 五星 × ¥50
    assert "CNY 650.00 now → CNY 450.00 under the new scheme (−CNY 200.00)" in page
    assert "1 in force end that night; 1 request(s) waiting are withdrawn" in page
    assert "三星、无星级" not in page and "Tiers without entitlements" in page
    preview = tier_simulate(scheme=points, business_date=NIGHT)
    client.post(f"/approvals/{approval.pk}/decide/", {"decision": "approve"})
    points.refresh_from_db()
    assert (points.status, points.effective_on) == (SchemeStatus.SCHEDULED, NIGHT)

    # until the night: the old scheme everywhere, and a word on when the new one takes effect
    client.force_login(bank["am"])
    customer = client.get("/members/MID/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Gold" in customer and "4 stars" not in customer
    assert f"takes effect on {NIGHT.isoformat()}" in customer
    zh = client.get("/members/MID/").content.decode()
    assert f"新方案 星级积分定级 (POINTS) 于 {NIGHT.isoformat()} 生效" in zh
    assert TierScheme.objects.get(code="DEFAULT_MADA").status == SchemeStatus.ACTIVE

    # the effective night
    runs = nightly_run(business_date=NIGHT)

    tier_step = next(run for run in runs if run.kind == "tier_recompute")
    assert tier_step.counts["scheme_switched"] == 1
    assert tier_step.counts["scheme_regraded"] == len(CUSTOMERS)
    assert TierScheme.objects.get(code="DEFAULT_MADA").status == SchemeStatus.RETIRED
    assert TierScheme.objects.get(code="DEFAULT_POINTS").status == SchemeStatus.ACTIVE
    # every member on the new scheme, as the preview said, each move a SCHEME_CHANGE
    assert tiers_now() == {no: points_tier for no, (_d, _m, points_tier) in CUSTOMERS.items()}
    by_tier = {t.pk: n for t, n in ((t, 0) for t in points.tiers.all())}
    for member in Member.objects.all():
        by_tier[member.tier_id] += 1
    assert by_tier == preview["by_tier"]
    moves = TierChange.objects.filter(business_date=NIGHT)
    assert set(moves.values_list("cause", flat=True)) == {TierChangeCause.SCHEME_CHANGE}
    assert moves.count() == len(CUSTOMERS)
    # grants by the mapped tiers, at the cost the approval showed
    granted = BenefitGrant.objects.filter(source="ENTITLEMENT")  # none before that night
    assert sorted(granted.values_list("member__member_no", "benefit__code")) == [
        ("ASKED", "LOUNGE"),
        ("ASKED", "LOUNGE"),
        ("MID", "LOUNGE"),
        ("MID", "LOUNGE"),
        ("RICH", "GIFT"),
    ]
    assert sum(g.cost_fen for g in granted) == 450_00
    assert scheme_entitlements_monthly_cost(points) == Decimal("450.00")
    # manual tiers: the one in force ended with the cause, the waiting one withdrawn
    manual = TierOverride.objects.get(member__member_no="MANUAL")
    asked = TierOverride.objects.get(member__member_no="ASKED")
    assert (manual.status, manual.end_cause, manual.ended_on) == (
        OverrideStatus.ENDED,
        TierChangeCause.SCHEME_CHANGE,
        NIGHT,
    )
    assert asked.status == OverrideStatus.WITHDRAWN and "星级积分" in asked.decision_comment
    withdrawn = ApprovalRequest.objects.get(kind="TIER_OVERRIDE", object_id=str(asked.pk))
    assert withdrawn.status == ApprovalStatus.WITHDRAWN
    # … and listed on the account manager's workbench
    workbench = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Manual tiers ended by the tier scheme change" in workbench
    assert "MANUAL" in workbench and "ASKED" in workbench and "request withdrawn" in workbench
    # no page mixes schemes: the customer page grades by points now, and says nothing is due
    customer = client.get("/members/MID/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "4 stars" in customer and "takes effect on" not in customer
    # a second run of the night changes nothing
    again = nightly_run(business_date=NIGHT)
    tier_again = next(run for run in again if run.kind == "tier_recompute")
    assert "scheme_switched" not in tier_again.counts and tier_again.counts["changed"] == 0
    assert BenefitGrant.objects.count() == 5


def test_the_dashboard_counts_a_scheme_switch_apart_from_upgrades(bank):
    """Moves of a scheme switch compare tiers of two ladders: they are neither upgrades nor
    downgrades."""
    from operations.dashboard.snapshot import kpi_snapshot_compute
    from tests.schemes import scheme_switch

    # the members held their MADA tiers at the end of last month
    TierChange.objects.update(business_date=NIGHT.replace(day=1) - timedelta(days=1))
    scheme_switch(
        TierScheme.objects.get(code="DEFAULT_POINTS"),
        maker=bank["operator"],
        checker=bank["checker"],
        mapping=MAPPING,
    )
    tier_recompute(business_date=NIGHT)

    migration = kpi_snapshot_compute(business_date=NIGHT).data["migration"]

    assert migration["upgraded"] == 0 and migration["downgraded"] == 0
    assert migration["scheme_changed"] == len(CUSTOMERS)


def test_approving_a_scheme_is_refused_while_a_new_tier_has_no_decision(bank):
    from members.services import tier_scheme_request_activation
    from portal.approvals import approval_decide, approval_pending_for
    from portal.errors import StateConflict
    from tests.schemes import scheme_decide_entitlements

    points = TierScheme.objects.get(code="DEFAULT_POINTS")
    scheme_decide_entitlements(points, actor=bank["operator"], mapping=MAPPING)
    points.tiers.get(code="STAR3").entitlement_decision.delete()
    tier_scheme_request_activation(scheme=points, actor=bank["operator"])

    with pytest.raises(StateConflict, match="三星"):
        approval_decide(
            approval=approval_pending_for(kind="TIER_SCHEME_ACTIVATION", obj=points),
            approve=True,
            actor=bank["checker"],
        )
    assert TierScheme.objects.get(pk=points.pk).status == SchemeStatus.PENDING


@pytest.mark.parametrize(
    ("days", "language", "words"),
    [
        (0, "en", "must be a coming night"),
        (-3, "zh-hans", "须为即将到来的夜间批处理日"),
        (400, "en", "must be a coming night"),
    ],
)
def test_an_effective_date_is_a_coming_night_within_a_year(bank, days, language, words):
    from django.utils import translation

    from members.services import tier_scheme_request_activation
    from portal.errors import InvalidInput

    points = TierScheme.objects.get(code="DEFAULT_POINTS")
    with translation.override(language), pytest.raises(InvalidInput, match=words) as refused:
        tier_scheme_request_activation(
            scheme=points, actor=bank["operator"], effective_on=TODAY + timedelta(days=days)
        )
    assert refused.value.field == "effective_on"
    assert TierScheme.objects.get(pk=points.pk).status == SchemeStatus.DRAFT


def test_the_workbench_lists_ended_manual_tiers_of_the_managers_own_customers(
    client, bank, make_user
):
    from tests.schemes import scheme_switch

    other = make_user(Role.ACCOUNT_MANAGER, username="am_south", branch="B02S1")
    scheme_switch(
        TierScheme.objects.get(code="DEFAULT_POINTS"),
        maker=bank["operator"],
        checker=bank["checker"],
        mapping=MAPPING,
    )

    client.force_login(bank["am"])
    own = client.get("/").content.decode()
    client.force_login(other)
    theirs = client.get("/").content.decode()

    assert 'id="list-scheme-ended"' in own and "MANUAL" in own
    assert 'id="list-scheme-ended"' not in theirs and "MANUAL" not in theirs
