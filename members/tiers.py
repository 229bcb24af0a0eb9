"""The tier engine: how a scheme turns monthly statistics into a tier (API.md, "Defaults").

One `TierPlan` describes a recompute for a business date: the basis months, the per-month
value of the scheme's method (MADA in fen, or points), the evaluation window and the
protection rule. From it come both the set-based SQL that grades the whole population and
`tier_explain`, the per-member explanation in Python. Both use the same integer formulas,
so the explanation always matches what the engine did.

Integer arithmetic only (exact on PostgreSQL and SQLite alike):
- a month's MADA in fen = floor(financial_day_sum_fen / days_in_month): the cent amount
  shown, and `MADA ≥ threshold` exactly as for the unrounded quotient (thresholds are whole
  fen, so flooring never lifts a member over one);
- a window's MADA = floor(sum of the monthly MADAs / window months);
- POINTS: per indicator floor(measure × points / unit), capped, then summed; a window's
  points = floor(sum of the monthly points / window months).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import connection
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from portal.clock import SHANGHAI
from portal.display import money_text
from portal.money import fen_to_decimal
from portal.periods import add_months, days_in, month_start

from .choices import (
    AssetCategory,
    IndicatorKind,
    SchemeStatus,
    TierChangeCause,
    TierMethod,
)
from .models import Member, MemberMonthlyStat, PointsIndicator, Tier, TierScheme


def basis_month_for(business_date: date) -> date:
    """The last complete calendar month before the business date."""
    return add_months(month_start(business_date), -1)


# --- POINTS indicators: one small class per kind --------------------------------------------


class IndicatorRule:
    """Turns one indicator into an integer SQL expression over a monthly stat row `s`, and
    the same number in Python."""

    def measure_sql(self, indicator: PointsIndicator) -> str:
        raise NotImplementedError

    def measure(self, indicator: PointsIndicator, stat: MemberMonthlyStat) -> int:
        raise NotImplementedError

    #: money day-sums are averaged over the month's days; other measures are not.
    averaged = False
    #: measured on the member row (m), not on the monthly stat row (s)
    member_level = False

    def points_sql(self, indicator: PointsIndicator, days: int) -> str:
        divisor = indicator.per_unit * (days if self.averaged else 1)
        return _capped_sql(
            f"(({self.measure_sql(indicator)}) * {indicator.points}) / {divisor}", indicator.cap
        )

    def points(self, indicator: PointsIndicator, stat: MemberMonthlyStat | None, days: int) -> int:
        if stat is None:
            return 0
        divisor = indicator.per_unit * (days if self.averaged else 1)
        return _capped(self.measure(indicator, stat) * indicator.points // divisor, indicator.cap)


def _capped_sql(expression: str, cap: int | None) -> str:
    if cap is None:
        return expression
    return f"(CASE WHEN {expression} > {cap} THEN {cap} ELSE {expression} END)"


def _capped(value: int, cap: int | None) -> int:
    return value if cap is None else min(value, cap)


class CategoryBalance(IndicatorRule):
    averaged = True

    def measure_sql(self, indicator):
        return f"s.{indicator.category.lower()}_day_sum_fen"

    def measure(self, indicator, stat):
        return stat.category_day_sum_fen(indicator.category)


class ColumnMeasure(IndicatorRule):
    def __init__(self, column: str) -> None:
        self.column = column

    def measure_sql(self, indicator):
        return f"s.{self.column}"

    def measure(self, indicator, stat):
        return getattr(stat, self.column)


class ProductsHeld(IndicatorRule):
    def measure_sql(self, indicator):
        return " + ".join(
            f"(CASE WHEN s.{category.lower()}_day_sum_fen > 0 THEN 1 ELSE 0 END)"
            for category in AssetCategory.values
        )

    def measure(self, indicator, stat):
        return stat.products_held


class Tenure(IndicatorRule):
    """Whole years since registration at the end of the month (a member-level measure)."""

    member_level = True
    MAX_YEARS = 40

    @staticmethod
    def boundaries(month: date) -> list[datetime]:
        """Registration before boundary k means at least k whole years by the month's end."""
        end = add_months(month, 1)
        return [
            datetime(end.year - k, end.month, 1, tzinfo=SHANGHAI)
            for k in range(1, Tenure.MAX_YEARS + 1)
        ]

    def member_points_sql(self, indicator, month: date) -> str:
        years = " + ".join(
            f"(CASE WHEN m.registered_at < {_timestamp_literal(b)} THEN 1 ELSE 0 END)"
            for b in self.boundaries(month)
        )
        return _capped_sql(
            f"((({years}) * {indicator.points}) / {indicator.per_unit})", indicator.cap
        )

    def member_points(self, indicator, member: Member, month: date) -> int:
        years = sum(1 for b in self.boundaries(month) if member.registered_at < b)
        return _capped(years * indicator.points // indicator.per_unit, indicator.cap)


def _timestamp_literal(moment: datetime) -> str:
    """A timestamp constant as the database stores DateTimeFields (UTC)."""
    utc = moment.astimezone(UTC)
    if connection.vendor == "sqlite":
        return f"'{utc:%Y-%m-%d %H:%M:%S}'"
    return f"'{utc.isoformat()}'"


INDICATORS: dict[str, IndicatorRule] = {
    IndicatorKind.CATEGORY_BALANCE: CategoryBalance(),
    IndicatorKind.FUND_PURCHASE: ColumnMeasure("fund_purchase_fen"),
    IndicatorKind.CONSUMPTION: ColumnMeasure("consumption_amount_fen"),
    IndicatorKind.ACTIVE_DAYS: ColumnMeasure("active_days"),
    IndicatorKind.PRODUCTS_HELD: ProductsHeld(),
    IndicatorKind.PAYROLL: ColumnMeasure("payroll_fen"),
    IndicatorKind.TENURE: Tenure(),
}


#: indicators whose measure is an amount of money (per_unit in fen)
MONEY_INDICATORS = frozenset(
    {
        IndicatorKind.CATEGORY_BALANCE,
        IndicatorKind.FUND_PURCHASE,
        IndicatorKind.CONSUMPTION,
        IndicatorKind.PAYROLL,
    }
)


def indicator_text(indicator: PointsIndicator) -> str:
    """An indicator as people read it, in the current language: "Demand deposit: 135 points
    per CNY 10,000.00 (at most 500 points)" — names, not codes; grouped numbers."""
    what = (
        AssetCategory(indicator.category).label
        if indicator.category in AssetCategory.values
        else IndicatorKind(indicator.kind).label
    )
    points = number_format(indicator.points, force_grouping=True)
    if indicator.kind in MONEY_INDICATORS:
        text = _("%(what)s: %(points)s points per %(amount)s") % {
            "what": what,
            "points": points,
            "amount": money_text(fen_to_decimal(indicator.per_unit)),
        }
    else:
        text = _("%(what)s: %(points)s points per %(units)s") % {
            "what": what,
            "points": points,
            "units": number_format(indicator.per_unit, force_grouping=True),
        }
    if indicator.cap is not None:
        text += _(" (at most %(cap)s points)") % {
            "cap": number_format(indicator.cap, force_grouping=True)
        }
    return text


# --- methods: MADA and POINTS ------------------------------------------------------------------


class MethodRule:
    measure_name: str

    def month_sql(self, plan: TierPlan, month: date) -> str:
        raise NotImplementedError

    def month_value(
        self, plan: TierPlan, stat: MemberMonthlyStat | None, month: date, member: Member
    ) -> int:
        raise NotImplementedError

    def member_month_sql(self, plan: TierPlan, month: date) -> str | None:
        """Part of a month's value measured on the member row itself (None: no such part)."""
        return None

    def window_sql(self, total: str, months: int) -> str:
        raise NotImplementedError

    def window_value(self, total: int, months: int) -> int:
        raise NotImplementedError

    def breakdown(self, plan, stat, month, member) -> list[tuple[str, int]]:
        return []


class MadaMethod(MethodRule):
    measure_name = "MADA"

    def month_sql(self, plan, month):
        days = days_in(month)
        return f"s.financial_day_sum_fen / {days}"

    def month_value(self, plan, stat, month, member):
        days = days_in(month)
        return 0 if stat is None else stat.financial_day_sum_fen // days

    def window_sql(self, total, months):
        return total if months == 1 else f"(({total}) / {months})"

    def window_value(self, total, months):
        return total if months == 1 else total // months


class PointsMethod(MethodRule):
    measure_name = "POINTS"

    def month_sql(self, plan, month):
        days = days_in(month)
        parts = [
            INDICATORS[i.kind].points_sql(i, days)
            for i in plan.indicators
            if not INDICATORS[i.kind].member_level
        ]
        return " + ".join(parts) if parts else "0"

    def member_month_sql(self, plan, month):
        parts = [
            INDICATORS[i.kind].member_points_sql(i, month)
            for i in plan.indicators
            if INDICATORS[i.kind].member_level
        ]
        return " + ".join(parts) if parts else None

    def month_value(self, plan, stat, month, member):
        return sum(points for _label, points in self.breakdown(plan, stat, month, member))

    def breakdown(self, plan, stat, month, member):
        days = days_in(month)
        rows = []
        for indicator in plan.indicators:
            rule = INDICATORS[indicator.kind]
            if rule.member_level:
                points = rule.member_points(indicator, member, month)
                rows.append((indicator_text(indicator), points))
            else:
                rows.append((indicator_text(indicator), rule.points(indicator, stat, days)))
        return rows

    def window_sql(self, total, months):
        return total if months == 1 else f"(({total}) / {months})"

    def window_value(self, total, months):
        return total // months


METHODS: dict[str, MethodRule] = {TierMethod.MADA: MadaMethod(), TierMethod.POINTS: PointsMethod()}


@dataclass
class TierPlan:
    """Everything one recompute needs, read once from the scheme."""

    scheme: TierScheme
    tiers: list[Tier]  # by rank, lowest first
    indicators: list[PointsIndicator]
    business_date: date
    basis_month: date

    @classmethod
    def for_scheme(cls, scheme: TierScheme, business_date: date) -> TierPlan:
        return cls(
            scheme=scheme,
            tiers=list(scheme.tiers.order_by("rank")),
            indicators=list(scheme.indicators.order_by("id")),
            business_date=business_date,
            basis_month=basis_month_for(business_date),
        )

    @classmethod
    def active(cls, business_date: date) -> TierPlan:
        scheme = TierScheme.objects.filter(status=SchemeStatus.ACTIVE).first()
        if scheme is None:
            raise LookupError(
                "No active tier scheme. Activate one in Configuration → Tier schemes."
            )
        return cls.for_scheme(scheme, business_date)

    @property
    def method(self) -> MethodRule:
        return METHODS[self.scheme.method]

    @property
    def window(self) -> int:
        return self.scheme.window_months

    @property
    def protection_months(self) -> int:
        return self.scheme.downgrade_after_months

    @property
    def months(self) -> list[date]:
        """Stat months read, newest first: the protection span, each with its window."""
        return [
            add_months(self.basis_month, -i)
            for i in range(self.protection_months + self.window - 1)
        ]

    def rank_for(self, value: int) -> int:
        rank = self.tiers[0].rank
        for tier in self.tiers:
            if value >= tier.threshold:
                rank = tier.rank
        return rank

    def tier_by_rank(self, rank: int) -> Tier:
        return next(tier for tier in self.tiers if tier.rank == rank)


# --- explanation (Python, one member) ---------------------------------------------------------


@dataclass
class MonthBasis:
    month: date
    value: int  # fen or points
    breakdown: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class TierExplanation:
    """Why a member has the tier they have, in the engine's own numbers."""

    scheme: TierScheme
    measure: str
    business_date: date
    basis_month: date
    months: list[MonthBasis]  # newest first
    window_values: list[int]  # newest first, one per protection month
    thresholds: list[tuple[Tier, int]]
    target: Tier  # the tier the latest basis supports
    current: Tier | None  # computed tier before this evaluation
    computed: Tier  # the engine's result
    months_below: int
    protection_months: int
    rule: str
    override: Tier | None
    credit_risk: bool

    def display(self, value: int) -> Decimal | int:
        return fen_to_decimal(value) if self.measure == "MADA" else value

    @property
    def basis(self) -> int:
        return self.window_values[0]

    @property
    def month_rows(self) -> list[tuple[date, Decimal | int, list[tuple[str, int]]]]:
        """(month, value in CNY or points, indicator breakdown) for display, newest first."""
        return [(m.month, self.display(m.value), m.breakdown) for m in self.months]


def _counts_for_protection(plan: TierPlan, j: int, computed_since: date | None) -> bool:
    """A basis month counts towards protection only once the member had the tier."""
    month_end = add_months(plan.months[j], 1)
    return computed_since is None or computed_since < month_end


def tier_explain(*, member: Member, plan: TierPlan) -> TierExplanation:
    """Evaluate one member exactly as the recompute does and say why."""
    stats = {
        stat.month: stat
        for stat in MemberMonthlyStat.objects.filter(member=member, month__in=plan.months)
    }
    method = plan.method
    months = [
        MonthBasis(
            month=month,
            value=method.month_value(plan, stats.get(month), month, member),
            breakdown=method.breakdown(plan, stats.get(month), month, member),
        )
        for month in plan.months
    ]
    window_values = [
        method.window_value(sum(m.value for m in months[j : j + plan.window]), plan.window)
        for j in range(plan.protection_months)
    ]
    target_rank = plan.rank_for(window_values[0])
    current = member.computed_tier if member.computed_tier_id else None
    if current is not None and current.scheme_id != plan.scheme.pk:
        current = None
    months_below = 0
    if current is not None:
        for j, value in enumerate(window_values):
            if value >= current.threshold or not _counts_for_protection(
                plan, j, member.computed_since
            ):
                break
            months_below += 1
    lowest = plan.tiers[0].rank
    steps = plan.scheme.max_downgrade_steps
    if member.credit_risk:
        rank, rule = lowest, "credit_risk"
    elif current is None:
        rank, rule = target_rank, "first_grading"
    elif target_rank > current.rank:
        rank, rule = target_rank, "upgrade"
    elif target_rank == current.rank:
        rank, rule = target_rank, "qualifies"
    elif months_below >= plan.protection_months:
        rank = target_rank if steps is None else max(target_rank, current.rank - steps)
        rule = "downgrade"
    else:
        rank, rule = current.rank, "protected"
    override = None
    active = member.tier_overrides.filter(
        status="ACTIVE", expires_on__gte=plan.business_date, tier__scheme=plan.scheme
    ).first()
    if active is not None and not member.credit_risk:
        override = active.tier
    return TierExplanation(
        scheme=plan.scheme,
        measure=method.measure_name,
        business_date=plan.business_date,
        basis_month=plan.basis_month,
        months=months,
        window_values=window_values,
        thresholds=[(tier, tier.threshold) for tier in plan.tiers],
        target=plan.tier_by_rank(target_rank),
        current=current,
        computed=plan.tier_by_rank(rank),
        months_below=months_below if rank == (current.rank if current else None) else 0,
        protection_months=plan.protection_months,
        rule=rule,
        override=override,
        credit_risk=member.credit_risk,
    )


# --- the set-based recompute ---------------------------------------------------------------


def _rank_case(plan: TierPlan, value: str) -> str:
    whens = " ".join(
        f"WHEN {value} >= {tier.threshold} THEN {tier.rank}" for tier in reversed(plan.tiers[1:])
    )
    return f"(CASE {whens} ELSE {plan.tiers[0].rank} END)" if whens else str(plan.tiers[0].rank)


def _tier_id_case(plan: TierPlan, rank: str) -> str:
    whens = " ".join(f"WHEN {tier.rank} THEN {tier.pk}" for tier in plan.tiers)
    return f"(CASE {rank} {whens} END)"


def evaluation_sql(plan: TierPlan, *, id_range: tuple[int, int] | None = None) -> str:
    """One statement creating TEMP TABLE tier_eval: every member's basis values, target rank,
    months below the computed tier, override and the new ranks and tier ids."""
    method = plan.method
    months = plan.months
    sums = ",\n        ".join(
        # CAST: on PostgreSQL SUM(bigint) is numeric, and the window division must stay integer
        f"CAST(SUM(CASE WHEN s.month = '{month.isoformat()}' THEN {method.month_sql(plan, month)} "
        f"ELSE 0 END) AS BIGINT) AS x{i}"
        for i, month in enumerate(months)
    )

    def month_total(i: int) -> str:
        member_part = method.member_month_sql(plan, months[i])
        return f"COALESCE(x.x{i}, 0)" + (f" + {member_part}" if member_part else "")

    windows = ",\n        ".join(
        method.window_sql(
            " + ".join(month_total(i) for i in range(j, j + plan.window)), plan.window
        )
        + f" AS v{j}"
        for j in range(plan.protection_months)
    )
    below_whens = " ".join(
        f"WHEN v.v{j} >= v.cur_threshold OR v.computed_since >= "
        f"'{add_months(months[j], 1).isoformat()}' THEN {j}"
        for j in range(plan.protection_months)
    )
    months_below = (
        f"CASE WHEN v.cur_rank IS NULL THEN 0 {below_whens} ELSE {plan.protection_months} END"
    )
    lowest = plan.tiers[0].rank
    steps = plan.scheme.max_downgrade_steps
    if steps is None:
        downgrade_to = "e.target_rank"
    else:
        downgrade_to = (
            f"CASE WHEN e.target_rank > e.cur_rank - {steps} THEN e.target_rank "
            f"ELSE e.cur_rank - {steps} END"
        )
    new_rank = f"""CASE WHEN e.credit_risk THEN {lowest}
             WHEN e.cur_rank IS NULL THEN e.target_rank
             WHEN e.target_rank >= e.cur_rank THEN e.target_rank
             WHEN e.months_below >= {plan.protection_months} THEN {downgrade_to}
             ELSE e.cur_rank END"""
    range_filter = stat_range = ""
    if id_range is not None:
        lo, hi = int(id_range[0]), int(id_range[1])
        range_filter = f"WHERE m.id BETWEEN {lo} AND {hi}"
        stat_range = f"AND s.member_id BETWEEN {lo} AND {hi}"
    business = plan.business_date.isoformat()
    return f"""
CREATE TEMP TABLE tier_eval AS
SELECT f.*, {_tier_id_case(plan, "f.new_rank")} AS new_computed_id,
    CASE WHEN f.credit_risk OR f.override_tier_id IS NULL THEN {_tier_id_case(plan, "f.new_rank")}
         ELSE f.override_tier_id END AS new_tier_id
FROM (
    SELECT e.*, {new_rank} AS new_rank
    FROM (
        SELECT v.*, {_rank_case(plan, "v.v0")} AS target_rank, {months_below} AS months_below
        FROM (
            SELECT m.id AS member_id, m.tier_id AS old_tier_id,
                m.computed_tier_id AS old_computed_id,
                m.tier_since AS old_tier_since, m.computed_since, m.tier_months_below AS old_below,
                b.value AS old_basis, m.credit_risk, ct.rank AS cur_rank,
                ct.threshold AS cur_threshold, o.tier_id AS override_tier_id,
                {windows}
            FROM members_member m
            LEFT JOIN (
                SELECT s.member_id,
                    {sums}
                FROM members_membermonthlystat s
                WHERE s.month >= '{months[-1].isoformat()}' AND s.month <= '{months[0].isoformat()}'
                    {stat_range}
                GROUP BY s.member_id
            ) x ON x.member_id = m.id
            LEFT JOIN members_membertierbasis b ON b.member_id = m.id
            LEFT JOIN members_tier ct
                ON ct.id = m.computed_tier_id AND ct.scheme_id = {plan.scheme.pk}
            LEFT JOIN members_tieroverride o ON o.member_id = m.id AND o.status = 'ACTIVE'
                AND o.expires_on >= '{business}'
                AND o.tier_id IN (
                    SELECT t.id FROM members_tier t WHERE t.scheme_id = {plan.scheme.pk})
            {range_filter}
        ) v
    ) e
) f
"""


def _differs(a: str, b: str) -> str:
    """Null-safe inequality that both PostgreSQL and SQLite understand."""
    return f"(({a}) <> ({b}) OR (({a}) IS NULL) <> (({b}) IS NULL))"


def change_cause_sql() -> str:
    c = TierChangeCause
    return f"""CASE
        WHEN e.override_tier_id IS NOT NULL AND NOT e.credit_risk
            AND e.new_tier_id = e.override_tier_id THEN '{c.OVERRIDE}'
        WHEN e.old_tier_id IS NULL THEN '{c.INITIAL}'
        WHEN e.cur_rank IS NULL THEN '{c.SCHEME_CHANGE}'
        WHEN e.credit_risk THEN '{c.CREDIT_RISK}'
        WHEN e.old_tier_id IS NOT NULL AND e.old_computed_id IS NOT NULL
            AND e.old_tier_id <> e.old_computed_id AND e.override_tier_id IS NULL
            THEN '{c.OVERRIDE_EXPIRY}'
        WHEN e.new_rank > e.cur_rank THEN '{c.UPGRADE}'
        ELSE '{c.DOWNGRADE}' END"""


def apply_sql(plan: TierPlan) -> list[str]:
    """Statements writing tier_eval back: history rows first, then the member rows whose tier,
    computed tier or months below change, then the bases that moved (their own narrow table:
    a basis moves for nearly everyone every month, a tier for a few)."""
    business = plan.business_date.isoformat()
    tier_changed = _differs("e.new_tier_id", "e.old_tier_id")
    computed_changed = _differs("e.new_computed_id", "e.old_computed_id")
    new_below = "CASE WHEN e.new_rank = e.cur_rank THEN e.months_below ELSE 0 END"
    return [
        f"""
INSERT INTO members_tierchange
    (member_id, from_tier_id, to_tier_id, cause, business_date, basis, months_below,
     job_run_id, created_at)
SELECT e.member_id, e.old_tier_id, e.new_tier_id, {change_cause_sql()}, '{business}', e.v0,
    e.months_below, %(job_run)s, %(now)s
FROM tier_eval e
WHERE {tier_changed}
""",
        f"""
UPDATE members_member SET
    tier_id = e.new_tier_id,
    computed_tier_id = e.new_computed_id,
    tier_since = CASE WHEN {tier_changed} THEN '{business}' ELSE e.old_tier_since END,
    computed_since = CASE WHEN {computed_changed} THEN '{business}' ELSE e.computed_since END,
    tier_months_below = {new_below}
FROM tier_eval e
WHERE members_member.id = e.member_id AND (
    {tier_changed} OR {computed_changed} OR {_differs(new_below, "e.old_below")})
""",
        """
UPDATE members_membertierbasis SET value = e.v0
FROM tier_eval e
WHERE members_membertierbasis.member_id = e.member_id AND e.old_basis <> e.v0
""",
        # a run of an overlapping id range at the same moment may insert the row first
        """
INSERT INTO members_membertierbasis (member_id, value)
SELECT e.member_id, e.v0 FROM tier_eval e WHERE e.old_basis IS NULL
ON CONFLICT (member_id) DO UPDATE SET value = excluded.value
""",
    ]


COUNTS_SQL = f"""
SELECT
    COUNT(*),
    SUM(CASE WHEN {_differs("e.new_tier_id", "e.old_tier_id")}
        AND e.cur_rank IS NOT NULL AND e.new_rank > e.cur_rank THEN 1 ELSE 0 END),
    SUM(CASE WHEN {_differs("e.new_tier_id", "e.old_tier_id")}
        AND e.cur_rank IS NOT NULL AND e.new_rank < e.cur_rank THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.cur_rank IS NOT NULL AND e.target_rank < e.cur_rank
        AND e.new_rank = e.cur_rank AND NOT e.credit_risk THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.override_tier_id IS NOT NULL AND NOT e.credit_risk THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.credit_risk THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.old_tier_id IS NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN {_differs("e.new_tier_id", "e.old_tier_id")} THEN 1 ELSE 0 END),
    SUM(CASE WHEN e.old_tier_id IS NOT NULL AND e.cur_rank IS NULL THEN 1 ELSE 0 END)
FROM tier_eval e
"""
COUNT_NAMES = [
    "evaluated",
    "upgraded",
    "downgraded",
    "held_by_protection",
    "overridden",
    "credit_risk",
    "first_graded",
    "changed",
    # graded by a scheme that replaced the one their tier belonged to (SCHEME_CHANGE)
    "scheme_regraded",
]
