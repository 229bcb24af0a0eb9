"""An account manager's day in the browser: log in, find a dormant customer on the
workbench, open the customer 360 page, write a follow-up note with a date, and see it come
back on the workbench as a follow-up due."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from members.models import FollowUpNote
from portal.choices import Role
from portal.clock import today_in_shanghai
from portal.periods import add_months, month_start
from tests.factories import MemberFactory, MemberMonthlyStatFactory

from .conftest import BROWSER_TEST, login

pytestmark = BROWSER_TEST


@pytest.fixture
def desk(org, make_user):
    am = make_user(Role.ACCOUNT_MANAGER, username="am_zhang", first_name="张丽")
    other = make_user(Role.ACCOUNT_MANAGER, username="am_wang")
    today = today_in_shanghai()
    sleeper = MemberFactory(
        member_no="M0000777",
        name="王小明",
        branch=org["B01S1"],
        account_manager=am,
        lifecycle_stage="DORMANT",
        last_active_on=today - timedelta(days=210),
    )
    for months_back in range(1, 4):
        MemberMonthlyStatFactory(
            member=sleeper,
            month=add_months(month_start(today), -months_back),
            financial_day_sum_fen=30 * 5_000_000,
            asset_days=30,
        )
    MemberFactory(member_no="M0000999", name="李四", branch=org["B01S1"], account_manager=other,
                  lifecycle_stage="DORMANT")  # fmt: skip
    return {"am": am, "sleeper": sleeper}


def test_an_account_manager_finds_a_dormant_customer_and_adds_a_follow_up_note(
    page: Page, live_server, desk
):
    login(page, live_server, desk["am"])

    dormant = page.locator("#list-dormant")
    expect(dormant.get_by_role("heading")).to_contain_text("Dormant customers")
    expect(dormant.get_by_role("link", name="M0000777 王小明")).to_be_visible()
    expect(dormant).not_to_contain_text("M0000999")  # another manager's customer

    dormant.get_by_role("link", name="M0000777 王小明").click()

    expect(page.get_by_role("heading", name="王小明 M0000777")).to_be_visible()
    expect(page.get_by_text("138****")).to_be_visible()  # phone masked
    due = today_in_shanghai() + timedelta(days=3)
    notes = page.locator("#notes")
    notes.get_by_label("Note").fill("电话回访：推荐签到任务唤醒，周五到网点面谈")
    notes.get_by_label("Follow up by").fill(due.isoformat())
    notes.get_by_role("button", name="Add note").click()

    expect(page.locator("#notes")).to_contain_text("电话回访：推荐签到任务唤醒")
    note = FollowUpNote.objects.get(member=desk["sleeper"])
    assert (note.author, note.due_on) == (desk["am"], due)

    page.get_by_role("link", name="Home").click()
    followups = page.locator("#followups")
    expect(followups).to_contain_text("电话回访：推荐签到任务唤醒")
    expect(followups.get_by_role("link", name="M0000777 王小明")).to_be_visible()


def test_an_account_manager_searches_customers_by_stage_from_the_workbench(
    page: Page, live_server, desk
):
    login(page, live_server, desk["am"])

    page.get_by_label("Lifecycle stage").first.select_option("DORMANT")
    page.get_by_role("button", name="Search").click()

    expect(page.get_by_role("link", name="M0000777")).to_be_visible()
    expect(page.get_by_text("M0000999")).to_have_count(0)
