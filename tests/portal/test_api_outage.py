"""Every /api/ answer is JSON, also when things go wrong (API.md "REST API"): a database
outage is 503 `database_unavailable` with `Retry-After` — for the events endpoint saying that
re-sending the batch is safe — an unexpected error 500 `server_error` without a traceback,
an unknown address 404 `not_found`.

The outages are real: the request's own PostgreSQL backend is terminated with
`pg_terminate_backend` from a second connection, before the request (the token lookup
fails), in the middle of the events transaction, or before a middleware's session lookup.
Then the same batch is sent again and must be taken exactly once.
"""

from __future__ import annotations

import psycopg
import pytest
from django.conf import settings
from django.db import OperationalError, connection
from django.test import Client
from rest_framework.test import APIClient

from campaigns.models import EventBatch, MemberEvent
from members.models import PointsEntry
from portal.choices import ApiScope, Role
from portal.services import api_token_issue
from tests.campaigns.conftest import event
from tests.factories import MemberFactory, TaskFactory


def _server_url() -> str:
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgresql://{user}@{host}:{port}/postgres"


def _terminate(pid: int) -> None:
    """Kill a backend from outside, as a failover or a DBA would, and wait until it is gone."""
    with psycopg.connect(_server_url(), autocommit=True) as admin:
        killed = admin.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()[0]
    assert killed


def _kill_the_request_connection() -> None:
    connection.ensure_connection()
    _terminate(connection.connection.info.backend_pid)


def _assert_database_unavailable(response, *, mentions: str | None = None) -> dict:
    assert response.status_code == 503, response.content
    assert response["Content-Type"].startswith("application/json")
    assert int(response["Retry-After"]) == settings.API_RETRY_AFTER_SECONDS
    body = response.json()
    assert body["code"] == "database_unavailable"
    assert body["detail"]
    if mentions:
        assert mentions in body["detail"]
    assert b"Traceback" not in response.content and b"<html" not in response.content.lower()
    return body


@pytest.fixture
def system_user(make_user):
    return make_user(Role.SYSTEM, username="mobile_banking", branch="HO")


@pytest.fixture
def events_client(system_user) -> APIClient:
    key = api_token_issue(
        user=system_user, name="Mobile banking", scopes=[ApiScope.EVENTS_WRITE], actor=None
    )[1]
    client = APIClient()
    # English details, whatever the catalogues translate
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}", HTTP_ACCEPT_LANGUAGE="en")
    client.raise_request_exception = False
    return client


def _post(client, batch: list[dict]):
    return client.post("/api/v1/events/", {"events": batch}, format="json")


def _assert_taken_exactly_once(client, batch: list[dict], member, *, points: int) -> None:
    """After the outage: the same batch is accepted once, then only duplicates."""
    again = _post(client, batch)
    assert again.status_code == 200, again.content
    assert again.json() == {"accepted": len(batch), "duplicates": 0, "rejected": []}

    third = _post(client, batch)
    assert third.json() == {"accepted": 0, "duplicates": len(batch), "rejected": []}
    assert MemberEvent.objects.filter(event_id__in=[e["event_id"] for e in batch]).count() == len(
        batch
    )
    member.refresh_from_db()
    assert member.points_balance == points
    assert sum(PointsEntry.objects.filter(member=member).values_list("points", flat=True)) == points


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
class TestDatabaseOutage:
    def test_a_connection_lost_before_the_request_is_503_and_the_resent_batch_is_taken_once(
        self, events_client
    ):
        member = MemberFactory()
        TaskFactory(reward_points=100)
        batch = [event(member, event_id="outage-1"), event(member, event_id="outage-2")]
        _kill_the_request_connection()

        response = _post(events_client, batch)  # the token lookup meets the dead connection

        body = _assert_database_unavailable(response, mentions="event_id")
        assert "safe" in body["detail"]
        assert MemberEvent.objects.count() == 0
        _assert_taken_exactly_once(events_client, batch, member, points=100)

    def test_a_connection_lost_inside_the_events_transaction_rolls_it_back(self, events_client):
        member = MemberFactory()
        TaskFactory(reward_points=100)
        batch = [event(member, event_id="mid-1")]
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        killed = []

        def kill_before_the_events_insert(execute, sql, params, many, context):
            # the batch row is already written in this transaction: it must go with it
            if "INSERT INTO campaigns_memberevent" in sql and not killed:
                killed.append(pid)
                _terminate(pid)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(kill_before_the_events_insert):
            response = _post(events_client, batch)

        assert killed == [pid]
        _assert_database_unavailable(response, mentions="event_id")
        assert connection.connection is None or connection.connection.info.backend_pid != pid
        assert EventBatch.objects.count() == 0
        assert MemberEvent.objects.count() == 0
        _assert_taken_exactly_once(events_client, batch, member, points=100)

    def test_a_connection_lost_before_a_middleware_reads_the_session_is_503_json(self, system_user):
        """pghistory's middleware reads the session's user of a POST before any view runs:
        the outage arises outside DRF and must still be JSON."""
        client = APIClient()
        client.force_login(system_user)
        client.credentials(HTTP_ACCEPT_LANGUAGE="en")
        client.raise_request_exception = False
        _kill_the_request_connection()

        response = client.post("/api/v1/events/", {"events": []}, format="json")

        _assert_database_unavailable(response, mentions="event_id")
        after = client.get("/api/v1/approvals/")  # the next request connects again
        assert after.status_code in (200, 403), after.content

    def test_another_endpoint_says_only_to_try_again(self, make_user, api_client_for):
        client = api_client_for(make_user(Role.ADMINISTRATOR, branch="HO"))
        client.raise_request_exception = False
        _kill_the_request_connection()

        response = client.get("/api/v1/members/", HTTP_ACCEPT_LANGUAGE="en")

        body = _assert_database_unavailable(response)
        assert "event_id" not in body["detail"]
        assert client.get("/api/v1/members/").status_code == 200


class FailingMiddleware:
    """A middleware that fails for every request (test-only), below ApiErrorMiddleware."""

    error: Exception = RuntimeError("boom in a middleware")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        raise self.error


@pytest.mark.django_db
class TestUnexpectedErrors:
    def test_an_unexpected_error_in_a_view_is_a_json_500_without_traceback(
        self, events_client, monkeypatch
    ):
        def explode(**kwargs):
            raise RuntimeError("secret internals")

        monkeypatch.setattr("campaigns.api.views.events_ingest", explode)

        response = _post(events_client, [event(MemberFactory())])

        assert response.status_code == 500
        assert response["Content-Type"].startswith("application/json")
        body = response.json()
        assert body["code"] == "server_error" and body["detail"]
        assert b"secret internals" not in response.content
        assert b"Traceback" not in response.content

    @pytest.mark.parametrize(
        ("error", "status", "code"),
        [
            (RuntimeError("boom in a middleware"), 500, "server_error"),
            (
                OperationalError("server closed the connection unexpectedly"),
                503,
                "database_unavailable",
            ),
        ],
    )
    def test_an_error_raised_in_a_middleware_is_json_too(
        self, settings, monkeypatch, error, status, code
    ):
        settings.MIDDLEWARE = [*settings.MIDDLEWARE, f"{__name__}.FailingMiddleware"]
        monkeypatch.setattr(FailingMiddleware, "error", error)
        client = Client(raise_request_exception=False)

        response = client.get("/api/v1/members/")

        assert response.status_code == status
        assert response.json()["code"] == code
        assert b"boom" not in response.content and b"<html" not in response.content.lower()
        if status == 503:
            assert response["Retry-After"]
        pages = client.get("/login/")  # pages keep Django's own error page
        assert pages.status_code == 500
        assert "application/json" not in pages["Content-Type"]

    def test_an_unknown_api_address_is_a_json_404(self, events_client):
        for client in (events_client, Client()):
            response = client.get("/api/v1/nope/")

            assert response.status_code == 404
            assert response["Content-Type"].startswith("application/json")
            assert response.json()["code"] == "not_found"

    def test_an_unknown_page_keeps_the_html_404(self, client):
        response = client.get("/nope/")

        assert response.status_code == 404
        assert "application/json" not in response["Content-Type"]

    def test_the_errors_drf_answers_keep_their_shape(self, events_client):
        assert Client().get("/api/v1/members/").json()["code"] == "not_authenticated"
        too_large = _post(events_client, [{"event_id": str(n)} for n in range(1001)])
        assert too_large.status_code == 413
        assert too_large.json()["code"] == "batch_too_large"
        malformed = events_client.post("/api/v1/events/", {"nope": 1}, format="json")
        assert malformed.json()["code"] == "malformed_batch"
