"""Budgets can never overspend, and a grant is issued once per idempotency key, even under
many concurrent requests (PostgreSQL row locks; DESIGN.md "Budget")."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Sum

from benefits.choices import GrantSource
from benefits.models import BenefitGrant, Budget, BudgetEntry
from benefits.services import BudgetExhausted, grant_create
from portal.choices import Role
from portal.clock import today_in_shanghai
from tests.factories import BenefitFactory, BudgetFactory, MemberFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

THREADS = 12
ATTEMPTS_PER_THREAD = 4
COST_FEN = 12_345  # 123.45 CNY


def _race(budget: Budget, benefit, members, *, same_key: bool = False) -> dict:
    """Every thread tries ATTEMPTS_PER_THREAD grants at once; returns what happened."""
    barrier = threading.Barrier(THREADS)
    outcome = {"granted": [], "exhausted": 0, "errors": []}
    lock = threading.Lock()
    expires = today_in_shanghai() + timedelta(days=30)

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            for attempt in range(ATTEMPTS_PER_THREAD):
                key = "same-key" if same_key else f"race-{index}-{attempt}"
                try:
                    grant = grant_create(
                        member=members[(index * ATTEMPTS_PER_THREAD + attempt) % len(members)],
                        benefit=benefit,
                        budget=budget,
                        source=GrantSource.MANUAL,
                        idempotency_key=key,
                        expires_on=expires,
                    )
                except BudgetExhausted:
                    with lock:
                        outcome["exhausted"] += 1
                else:
                    with lock:
                        outcome["granted"].append(grant.pk)
        except Exception as exc:  # a crash in a thread must fail the test, not vanish
            with lock:
                outcome["errors"].append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcome


def _ledger_sum(budget: Budget) -> int:
    return BudgetEntry.objects.filter(budget=budget).aggregate(s=Sum("amount_fen"))["s"] or 0


@pytest.fixture
def members(db):
    return [MemberFactory() for _ in range(5)]


def test_exactly_n_grants_succeed_against_a_budget_with_room_for_n(members):
    room_for = 17
    budget = BudgetFactory(amount_fen=room_for * COST_FEN + COST_FEN - 1)  # 17.99 grants of room
    benefit = BenefitFactory(unit_cost_fen=COST_FEN, budget=budget)

    outcome = _race(budget, benefit, members)

    budget.refresh_from_db()
    assert outcome["errors"] == []
    assert len(outcome["granted"]) == room_for
    assert outcome["exhausted"] == THREADS * ATTEMPTS_PER_THREAD - room_for
    assert budget.consumed_fen == room_for * COST_FEN
    assert BenefitGrant.objects.filter(budget=budget).count() == room_for
    assert _ledger_sum(budget) == budget.consumed_fen


def test_a_child_budget_is_bounded_by_its_parent(members):
    room_for = 9
    parent = BudgetFactory(amount_fen=room_for * COST_FEN)
    child = BudgetFactory(amount_fen=1_000 * COST_FEN, parent=parent)
    benefit = BenefitFactory(unit_cost_fen=COST_FEN, budget=child)

    outcome = _race(child, benefit, members)

    parent.refresh_from_db()
    child.refresh_from_db()
    assert outcome["errors"] == []
    assert len(outcome["granted"]) == room_for
    assert parent.consumed_fen == child.consumed_fen == room_for * COST_FEN
    assert _ledger_sum(parent) == parent.consumed_fen
    assert _ledger_sum(child) == child.consumed_fen


def test_concurrent_requests_with_one_idempotency_key_grant_once(members):
    budget = BudgetFactory(amount_fen=1_000 * COST_FEN)
    benefit = BenefitFactory(unit_cost_fen=COST_FEN, budget=budget)

    outcome = _race(budget, benefit, members, same_key=True)

    budget.refresh_from_db()
    assert outcome["errors"] == []
    assert len(set(outcome["granted"])) == 1  # every caller got the same grant back
    assert BenefitGrant.objects.filter(idempotency_key="same-key").count() == 1
    assert budget.consumed_fen == COST_FEN
    assert _ledger_sum(budget) == COST_FEN


def test_one_new_parent_waits_per_budget_however_many_ask_at_once(make_user):
    """Approvers asking at once for a budget's new parent: one request waits, the others are
    told one already does (the budget's row lock orders them)."""
    from benefits.services.budget_changes import budget_parent_change_request
    from portal.errors import StateConflict
    from portal.models import ApprovalRequest

    makers = [make_user(Role.BUDGET_APPROVER, username=f"ba{n}", branch="HO") for n in range(6)]
    top = BudgetFactory(code="TOP", amount_fen=10_000_000_00)
    parents = [
        BudgetFactory(code=f"P{n}", parent=top, department=top.department, amount_fen=1_000_000_00)
        for n in range(2)
    ]
    child = BudgetFactory(
        code="CHILD", parent=parents[0], department=top.department, amount_fen=100_000_00
    )
    barrier = threading.Barrier(len(makers))
    outcome = {"asked": 0, "refused": 0, "errors": []}
    lock = threading.Lock()

    def worker(maker) -> None:
        try:
            barrier.wait(timeout=30)
            try:
                budget_parent_change_request(budget=child, parent=parents[1], actor=maker)
            except StateConflict:
                with lock:
                    outcome["refused"] += 1
            else:
                with lock:
                    outcome["asked"] += 1
        except Exception as exc:  # noqa: BLE001 - a crash in a thread must fail the test
            with lock:
                outcome["errors"].append(repr(exc))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(maker,)) for maker in makers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert outcome == {"asked": 1, "refused": len(makers) - 1, "errors": []}
    assert (
        ApprovalRequest.objects.filter(kind="BUDGET_PARENT_CHANGE", status="PENDING").count() == 1
    )
