"""The REST API keeps its OpenAPI schema's word (finding 7): schemathesis generates requests
for every operation of /api/schema/ — valid and invalid bodies, query strings and path
parameters — and sends them to the WSGI application, once with the system integration's API
token and once with a head-office administrator's session. Every answer must be no server
error, a status the schema documents for the operation, in the documented content type, with
a body the schema's response says.

The world: a few members (one with grants), budgets (one under another), benefits and an
entitlement, a segment, and campaigns in each state of the workflow (a draft, one waiting for
approval, an active and a paused one) with tasks. Path parameters are drawn from these
objects' ids most of the time, so detail routes find something; writes happen and stay for
the operation's later examples. Generation is derandomized: the same code gives the same
requests.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
import schemathesis
from django.contrib.auth.models import Group
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from benefits.choices import GrantSource
from benefits.models import TierEntitlement
from benefits.services import grant_create
from campaigns.services import campaign_submit
from members.models import Tier
from portal.choices import ApiScope, Role
from portal.models import ApprovalRequest
from portal.services import api_token_issue
from tests.factories import (
    BenefitFactory,
    BudgetFactory,
    CampaignFactory,
    MemberFactory,
    SegmentFactory,
    TaskFactory,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

#: examples per operation and authentication (42 operations x 2: a couple of minutes)
MAX_EXAMPLES = 10

#: the application as a WSGI server runs it (middleware and all)
APP = WSGIHandler()

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _schema_dict() -> dict:
    """The schema /api/schema/ serves, as JSON (its URL needs a login; the generator is the
    same code)."""
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


schema = schemathesis.openapi.from_dict(
    _schema_dict(),
    config=schemathesis.Config.from_dict(
        {
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                # the credentials are the test's own, not generated
                "with-security-parameters": False,
            },
        }
    ),
)

#: requests sent per operation (both authentications), reported at the module's end (-s)
CALLS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_calls():
    yield
    if CALLS:
        print(f"\nschemathesis: {len(CALLS)} operations, {sum(CALLS.values())} requests")


#: the ids of the world's objects by path parameter and collection, filled by `world`
KNOWN: dict[str, list] = {}


def _collection(path: str) -> str:
    """`/api/v1/campaigns/{id}/submit/` -> `campaigns`."""
    return path.removeprefix("/api/v1/").split("/", 1)[0]


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Mostly an object of the world, sometimes what was generated (a 404)."""
    collection = _collection(context.operation.path)
    choices = []
    for name, value in (path_parameters or {}).items():
        known = KNOWN.get(f"{collection}.{name}") or KNOWN.get(name)
        if known:
            choices.append({**path_parameters, name: value})
            choices.extend({**path_parameters, name: ident} for ident in known)
    if not choices:
        return st.just(path_parameters)
    return st.sampled_from(choices)


@pytest.fixture
def same_connection():
    """Requests share the test's database connection and transaction, as with Django's test
    client: the end of a request must not close it (Django's ClientHandler does the same)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(db, make_user, org, same_connection):
    """Members, budgets, benefits, a segment, and campaigns in each workflow state."""
    operator = make_user(Role.PRODUCT_OPERATOR, username="contract_operator", branch="HO")
    manager = make_user(Role.ACCOUNT_MANAGER, username="contract_manager", branch="B01S1")
    standard = Tier.objects.get(scheme__code="DEFAULT_MADA", code="STANDARD")
    members = [
        MemberFactory(member_no="M0000123", branch=org["B01S1"], tier=standard),
        MemberFactory(member_no="M0000124", branch=org["B01S1"], account_manager=manager),
        MemberFactory(member_no="M0000125", branch=org["B02S1"], tier=standard),
    ]
    parent = BudgetFactory(code="RETAIL-2026", amount_fen=10_000_000_00)
    budget = BudgetFactory(
        code="RETAIL-2026-Q", parent=parent, department=parent.department, amount_fen=50_000_00
    )
    benefit = BenefitFactory(code="LOUNGE", budget=budget, department=budget.department)
    BenefitFactory(code="COFFEE", budget=budget, department=budget.department)
    grants = [
        grant_create(
            member=members[0],
            benefit=benefit,
            budget=budget,
            source=GrantSource.MANUAL,
            idempotency_key=f"contract-{n}",
            expires_on=date.today() + timedelta(days=30),
        )
        for n in range(3)
    ]
    segment = SegmentFactory(code="SEG-CONTRACT", department=budget.department)
    common = {"budget": budget, "department": budget.department, "created_by": operator}
    draft = CampaignFactory(
        code="C-DRAFT",
        status="DRAFT",
        starts_on=date.today() + timedelta(days=1),
        **common,
    )
    pending = CampaignFactory(
        code="C-PENDING",
        status="DRAFT",
        starts_on=date.today() + timedelta(days=1),
        **common,
    )
    active = CampaignFactory(code="C-ACTIVE", **common)
    paused = CampaignFactory(code="C-PAUSED", status="PAUSED", **common)
    tasks = [TaskFactory(campaign=campaign) for campaign in (draft, pending, active, paused)]
    campaign_submit(campaign=pending, actor=operator)
    entitlement = TierEntitlement.objects.create(
        benefit=benefit, tier=standard, quantity=1, period="MONTH"
    )
    KNOWN.clear()
    KNOWN.update(
        {
            "member_no": [m.member_no for m in members],
            "grant_id": [g.pk for g in grants],
            "campaigns.id": [c.pk for c in (draft, pending, active, paused)],
            "tasks.id": [t.pk for t in tasks],
            "segments.id": [segment.pk],
            "benefits.id": [benefit.pk],
            "budgets.id": [budget.pk, parent.pk],
            "entitlements.id": [entitlement.pk],
            "approvals.id": list(ApprovalRequest.objects.values_list("pk", flat=True)),
        }
    )
    yield
    KNOWN.clear()


@pytest.fixture(params=["token", "session"])
def credentials(request, make_user) -> dict:
    """What a client sends: the system integration's API token (every scope), or the
    session of a head-office administrator who also approves budgets (so the decisions run
    too), with its CSRF cookie and header."""
    if request.param == "token":
        system = make_user(Role.SYSTEM, username="contract_system", branch="HO")
        admin = make_user(Role.ADMINISTRATOR, username="contract_issuer", branch="HO")
        _token, key = api_token_issue(
            user=system, name="Contract test", scopes=ApiScope.values, actor=admin
        )
        return {"headers": {"Authorization": f"Token {key}"}, "cookies": {}}
    admin = make_user(Role.ADMINISTRATOR, username="contract_admin", branch="HO")
    admin.groups.add(Group.objects.get(name=str(Role.BUDGET_APPROVER)))
    browser = Client()
    browser.force_login(admin)
    csrf = _get_new_csrf_string()
    return {
        "headers": {"X-CSRFToken": csrf, "Accept-Language": "en"},
        "cookies": {"sessionid": browser.cookies["sessionid"].value, "csrftoken": csrf},
    }


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # `world` is built once per operation and authentication; its examples share it
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_operation_answers_as_its_schema_says(case, world, credentials):
    CALLS[case.operation.label] = CALLS.get(case.operation.label, 0) + 1
    case.call_and_validate(
        app=APP,
        headers=credentials["headers"],
        cookies=credentials["cookies"],
        checks=CHECKS,
    )
