"""Personal data encrypted at rest (issue 15, finding 8): after a members feed the database
holds no clear phone or ID number — not in the member table, not in its history table —
while the portal still masks, reveals, searches and exports them; keys rotate with
`manage.py personal_data_key`, legacy clear rows are encrypted in batches, production
refuses to start without a key."""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from members.models import Member
from members.services.personal_at_rest import personal_data_reencrypt, personal_data_status
from portal.choices import Role
from portal.crypto import personal_key_generate
from portal.models import AuditEntry
from tests.members.test_feeds import feed, member_row

PHONE = "13812345678"
ID_NUMBER = "110101199003071234"
ROOT = Path(__file__).resolve().parents[2]
DEV_KEY = "dev:ZGV2ZWxvcG1lbnQtb25seSBrZXksIG5vdCBzZWNyZXQ="


def _raw(table: str, columns: str = "phone, id_number") -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns} FROM {table}")
        return cursor.fetchall()


def _assert_no_clear_value(rows: list[tuple]) -> None:
    assert rows
    for row in rows:
        text = " ".join(str(value) for value in row)
        assert PHONE not in text and ID_NUMBER not in text
        assert "12345678" not in text and "03071234" not in text  # nor a recognisable part
        assert all(str(value).startswith("enc1:") for value in row)


@pytest.fixture
def imported(import_csv, org, make_user):
    make_user(Role.ACCOUNT_MANAGER, username="am_a", branch="B01S1")
    batch = import_csv(
        "members",
        feed(
            "members",
            member_row(
                "M1000001",
                phone=PHONE,
                id_number=ID_NUMBER,
                branch_code="B01S1",
                manager_username="am_a",
            ),
        ),
    )
    assert batch.accepted == 1
    return Member.objects.get(member_no="M1000001")


def test_the_member_table_holds_ciphertext_and_the_model_the_clear_values(imported):
    _assert_no_clear_value(_raw("members_member"))
    assert (imported.phone, imported.id_number) == (PHONE, ID_NUMBER)
    assert imported.masked_phone == "138****5678"
    digests = _raw("members_member", "phone_digest, id_number_digest")[0]
    assert all(len(value) == 32 for value in digests)
    assert PHONE not in digests and ID_NUMBER not in digests


@pytest.mark.postgres
def test_the_history_table_holds_no_clear_value_and_the_audit_page_masks_it(
    imported, client, make_user
):
    _assert_no_clear_value(_raw("members_memberhistory"))
    auditor = make_user(Role.RISK_AUDITOR, username="auditor", branch="HO")
    client.force_login(auditor)
    page = client.get("/audit/", {"model": "members.member"}).content.decode()
    assert PHONE not in page and ID_NUMBER not in page
    assert "138****5678" in page


def test_the_same_file_again_changes_nothing(import_csv, imported):
    before = _raw("members_member", "phone, id_number, phone_digest, id_number_digest")
    again = import_csv(
        "members",
        feed(
            "members",
            member_row(
                "M1000001",
                phone=PHONE,
                id_number=ID_NUMBER,
                branch_code="B01S1",
                manager_username="am_a",
            ),
        ),
        name="again.csv",
    )
    assert (again.accepted, again.duplicates) == (0, 1)
    assert _raw("members_member", "phone, id_number, phone_digest, id_number_digest") == before


def test_a_changed_phone_gets_a_new_ciphertext_and_keyed_hash(import_csv, imported):
    before = _raw("members_member", "phone, phone_digest, id_number_digest")[0]
    import_csv(
        "members",
        feed(
            "members",
            member_row(
                "M1000001",
                phone="13900000001",
                id_number=ID_NUMBER,
                branch_code="B01S1",
                manager_username="am_a",
            ),
        ),
        name="changed.csv",
    )
    after = _raw("members_member", "phone, phone_digest, id_number_digest")[0]
    assert after[0] != before[0] and after[1] != before[1]
    assert after[2] == before[2]  # the ID number did not change: nor its hash
    assert Member.objects.get().phone == "13900000001"


def test_an_equality_lookup_on_an_encrypted_column_is_refused_not_silently_empty(imported):
    with pytest.raises(FieldError):
        list(Member.objects.filter(phone=PHONE))
    with pytest.raises(FieldError):
        list(Member.objects.filter(id_number__startswith="110101"))


def test_a_ciphertext_moved_to_the_other_column_does_not_decrypt(imported):
    with connection.cursor() as cursor:
        cursor.execute("UPDATE members_member SET id_number = phone")
    with pytest.raises(ImproperlyConfigured, match="does not decrypt"):
        Member.objects.get(member_no="M1000001")


def test_the_reveal_shows_the_clear_values_from_the_ciphertext(imported, client, make_user):
    manager = make_user(Role.BRANCH_MANAGER, username="bm_b01", branch="B01")
    client.force_login(manager)
    response = client.post("/members/M1000001/reveal/", {"reason": "客户来电核实身份"})
    assert response.status_code == 200
    body = response.content.decode()
    assert PHONE in body and ID_NUMBER in body


def test_the_export_shows_the_masked_values(imported, client, make_user):
    operator = make_user(Role.PRODUCT_OPERATOR, username="operator", branch="HO")
    client.force_login(operator)
    response = client.get("/members/export.csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "138****5678" in body and "110101**********34" in body
    assert PHONE not in body and ID_NUMBER not in body


@pytest.mark.parametrize("typed", [ID_NUMBER, PHONE, "+86 138 1234 5678", "138-1234-5678"])
def test_a_manager_who_may_reveal_finds_the_customer_by_phone_or_id_however_typed(
    imported, client, make_user, typed
):
    manager = make_user(Role.BRANCH_MANAGER, username="bm_b01", branch="B01")
    client.force_login(manager)
    page = client.get("/members/", {"q": typed}).content.decode()
    assert "M1000001" in page


def _keys(*entries: str) -> str:
    return ",".join(entries)


def test_rotation_moves_every_value_and_hash_to_the_new_key(imported, settings, client, make_user):
    settings.PERSONAL_DATA_KEYS = [DEV_KEY]
    old = _raw("members_member", "phone, id_number, phone_digest, id_number_digest")[0]
    new_key = personal_key_generate("k2027")
    settings.PERSONAL_DATA_KEYS = [new_key, DEV_KEY]
    assert personal_data_status()["members_member"]["key dev"] == 2

    out, err = StringIO(), StringIO()
    call_command("personal_data_key", "rotate", stdout=out, stderr=err)

    assert "rows read" in err.getvalue()  # progress
    assert "key=k2027" in out.getvalue()
    after = _raw("members_member", "phone, id_number, phone_digest, id_number_digest")[0]
    assert after[0].startswith("enc1:k2027:") and after[1].startswith("enc1:k2027:")
    assert after[2] != old[2] and after[3] != old[3]
    assert personal_data_status()["members_member"] == {
        "clear": 0,
        "other key": 0,
        "key k2027": 2,
        "key dev": 0,
    }
    entry = AuditEntry.objects.get(action="personal_data.rotate")
    assert entry.changes["key"] == "k2027"

    settings.PERSONAL_DATA_KEYS = [new_key]  # the old key removed
    member = Member.objects.get()
    assert (member.phone, member.id_number) == (PHONE, ID_NUMBER)
    manager = make_user(Role.BRANCH_MANAGER, username="bm_b01", branch="B01")
    client.force_login(manager)
    assert "M1000001" in client.get("/members/", {"q": ID_NUMBER}).content.decode()

    again = StringIO()
    call_command("personal_data_key", "rotate", stdout=again, stderr=StringIO())
    assert "members_member: scanned=1 rewritten=0" in again.getvalue()


def test_an_old_key_removed_too_early_is_named(imported, settings):
    settings.PERSONAL_DATA_KEYS = [personal_key_generate("k2027")]
    with pytest.raises(ImproperlyConfigured, match="'dev'"):
        Member.objects.get()


def test_rows_stored_before_encryption_are_encrypted_in_batches_and_found(db, org):
    with connection.cursor() as cursor:
        for i in range(7):
            cursor.execute(
                "INSERT INTO members_member (member_no, name, phone, id_number, phone_digest, "
                "id_number_digest, registered_at, status, channels, credit_risk, "
                "lifecycle_stage, points_balance, tier_months_below, marketing_opt_out, "
                "created_at, updated_at) VALUES (%s, '张三', %s, %s, '', '', %s, 'ACTIVE', "
                "'[]', false, 'NEW', 0, 0, false, %s, %s)",
                [
                    f"M900000{i}",
                    f"1390000000{i}",
                    f"11010119900101000{i}",
                    "2026-01-01T00:00:00+00:00",
                    "2026-01-01T00:00:00+00:00",
                    "2026-01-01T00:00:00+00:00",
                ],
            )
    assert personal_data_status()["members_member"]["clear"] == 14
    lines: list[str] = []

    report = personal_data_reencrypt(batch_size=3, progress=lines.append)

    assert report.rewritten["members_member"] == 7
    assert len([line for line in lines if line.startswith("members_member:")]) == 3
    assert personal_data_status()["members_member"]["clear"] == 0
    assert Member.objects.get(member_no="M9000003").phone == "13900000003"
    assert personal_data_reencrypt().rewritten["members_member"] == 0


def test_generate_prints_a_usable_key():
    out = StringIO()
    call_command("personal_data_key", "generate", "--id", "k1", stdout=out, stderr=StringIO())
    entry = out.getvalue().strip()
    assert entry.startswith("k1:") and len(entry) == len("k1:") + 44


def test_production_refuses_to_start_without_a_key():
    env = {
        **os.environ,
        "DJANGO_ENV": "production",
        "SECRET_KEY": "x" * 60,
        "ALLOWED_HOSTS": "portal.bank.example",
        "DATABASE_URL": "sqlite:////tmp/never-used.sqlite3",
    }
    env.pop("PERSONAL_DATA_KEYS", None)
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "PERSONAL_DATA_KEYS" in result.stderr


def test_a_malformed_key_fails_the_system_check(settings):
    settings.PERSONAL_DATA_KEYS = ["k1:not-base64"]
    with pytest.raises(Exception, match="PERSONAL_DATA_KEYS"):
        call_command("check", stdout=StringIO(), stderr=StringIO())


def test_a_refused_members_row_is_kept_encrypted_and_shown_masked(import_csv, org):
    batch = import_csv(
        "members",
        feed(
            "members",
            member_row("M1000002", phone=PHONE, id_number=ID_NUMBER, branch_code="NOPE"),
        ),
    )
    assert batch.rejected == 1
    _assert_no_clear_value(_raw("members_feedrejection", "raw"))
    rejection = batch.rejections.get()
    assert PHONE in rejection.raw  # the row as received, for the masked display
    assert "138****5678" in rejection.masked_raw() and PHONE not in rejection.masked_raw()
