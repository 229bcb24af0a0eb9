"""The budgets admin as a budget approver and a product operator read it: amounts as
¥1,234,567.89 (简体中文) / CNY 1,234,567.89 (English), the consumed share with %, the
department by its name (not RETAIL), people by their full names; the budget form takes
"6,000,000.00" and says in Chinese why a period that ends before it starts is refused."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client

from benefits.admin import BudgetForm
from benefits.models import Budget
from portal.choices import Role
from tests.crawl import visible_text
from tests.factories import BudgetFactory, DepartmentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def budget(db):
    department = DepartmentFactory(code="RETAIL", name="零售金融部")
    return BudgetFactory(
        code="RETAIL-2026",
        name="零售权益年度预算",
        department=department,
        period_start=date(2026, 1, 1),
        period_end=date(2026, 12, 31),
        amount_fen=123_456_789,
        consumed_fen=1_234_568,
    )


def client_in(language: str, user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.cookies["django_language"] = language
    client.force_login(user)
    return client


def page_text(response) -> str:
    assert response.status_code == 200
    return " ".join(visible_text(response.content.decode()))


@pytest.mark.parametrize(
    ("language", "amount", "consumed", "header"),
    [
        ("zh-hans", "¥1,234,567.89", "¥12,345.68", "部门"),
        ("en", "CNY 1,234,567.89", "CNY 12,345.68", "Department"),
    ],
)
def test_budget_list_shows_money_percent_and_names(
    budget, make_user, language, amount, consumed, header
):
    approver = make_user(Role.BUDGET_APPROVER)

    text = page_text(client_in(language, approver).get("/admin/benefits/budget/"))

    assert amount in text
    assert consumed in text
    assert "1%" in text  # 12,345.68 of 1,234,567.89
    assert "零售金融部" in text  # the department by its name
    assert " RETAIL " not in f" {text} "
    assert header in text
    assert "5000000.00" not in text and "1234567.89" not in text


@pytest.mark.parametrize(
    ("language", "amount", "consumed"),
    [("zh-hans", "¥1,234,567.89", "¥12,345.68"), ("en", "CNY 1,234,567.89", "CNY 12,345.68")],
)
def test_budget_change_page_shows_money(budget, make_user, language, amount, consumed):
    operator = make_user(Role.PRODUCT_OPERATOR)

    text = page_text(
        client_in(language, operator).get(f"/admin/benefits/budget/{budget.pk}/change/")
    )

    assert consumed in text
    assert amount in text  # the amount, also where the user may only view it


def test_people_are_named_by_their_full_names(budget, make_user):
    admin = make_user(Role.ADMINISTRATOR, first_name="敏", last_name="周")

    text = page_text(client_in("zh-hans", admin).get("/admin/portal/user/"))

    assert "周敏" in text


def form_data(**values) -> dict:
    department = DepartmentFactory(code="RETAIL", name="零售金融部")
    return {
        "code": "RETAIL-2027",
        "name": "零售权益年度预算 2027",
        "department": department.pk,
        "line": "",
        "period_start": "2027-01-01",
        "period_end": "2027-12-31",
        "amount": "6,000,000.00",
        "alert_percents": "[80, 95]",
        **values,
    }


def test_budget_form_takes_an_amount_with_separators(db):
    form = BudgetForm(data=form_data())
    form.fields.pop("parent", None)

    assert form.is_valid(), form.errors
    assert str(form.cleaned_data["amount"]) == "6000000.00"


def test_a_period_that_ends_before_it_starts_is_refused_in_chinese(db):
    from django.utils import translation

    with translation.override("zh-hans"):
        form = BudgetForm(data=form_data(period_start="2027-12-31", period_end="2027-01-01"))
        assert not form.is_valid()
        errors = " ".join(str(message) for messages in form.errors.values() for message in messages)

    assert "budget_period_ordered" not in errors
    assert "约束" not in errors
    assert "期间" in errors or "结束" in errors
    assert not Budget.objects.filter(code="RETAIL-2027").exists()


def test_the_period_error_stands_also_while_the_amount_is_wrong(db):
    from django.utils import translation

    with translation.override("zh-hans"):
        form = BudgetForm(
            data=form_data(amount="abc", period_start="2027-12-31", period_end="2027-01-01")
        )
        assert not form.is_valid()

    assert "period_end" in form.errors
    assert "budget_period_ordered" not in str(form.errors)
