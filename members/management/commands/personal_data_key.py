"""`python manage.py personal_data_key generate|status|rotate`: the keys of personal data at
rest (phone and ID number; portal/crypto.py, docs/operations.md "Personal data keys").

- `generate [--id ID]` prints a new `PERSONAL_DATA_KEYS` entry (32 random bytes).
- `status` counts the stored values per key: clear ones (written before encryption), under
  each configured key, under a key no longer configured.
- `rotate` rewrites every value not under the current (first) key, and every keyed hash,
  in batches with progress; safe to stop and run again. Then the old key may be removed.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from portal.crypto import personal_key_generate, personal_keys
from portal.services import audit_record

from ...services.personal_at_rest import personal_data_reencrypt, personal_data_status


class Command(BaseCommand):
    help = (
        "Keys of personal data at rest: 'generate' a new key, 'status' of the stored values "
        "per key, 'rotate' every value and keyed hash onto the current (first) key of "
        "PERSONAL_DATA_KEYS."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["generate", "status", "rotate"])
        parser.add_argument(
            "--id", default="", help="generate: the new key's id (default: kYYYYMMDD)"
        )
        parser.add_argument(
            "--batch", type=int, default=5_000, help="rotate: rows per statement (100-50000)"
        )

    def handle(self, *args, action: str, id: str, batch: int, **options):
        try:
            if action == "generate":
                key_id = id or f"k{timezone.localdate():%Y%m%d}"
                try:
                    entry = personal_key_generate(key_id)
                except ValueError as exc:
                    raise CommandError(f"--id: {exc}") from None
                self.stderr.write(
                    "A new key. Put it FIRST in PERSONAL_DATA_KEYS (keep the old ones after "
                    "it), restart every process, then run `personal_data_key rotate`:"
                )
                self.stdout.write(entry)
                return
            keys = personal_keys()
            if action == "status":
                self._status()
                return
            if not 100 <= batch <= 50_000:
                raise CommandError("--batch must be between 100 and 50000.")
            current = keys[0].key_id
            self.stderr.write(f"Rotating personal data onto key '{current}'…")
            report = personal_data_reencrypt(batch_size=batch, progress=self.stderr.write)
            with transaction.atomic():
                audit_record(
                    actor=None,
                    action="personal_data.rotate",
                    changes={"key": current, **report.rewritten},
                )
            self.stdout.write(f"key={current} {report.line()}")
            self._status()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None

    def _status(self) -> None:
        for table, counts in personal_data_status().items():
            shown = " ".join(
                f"{name.replace(' ', '_')}={count:,}" for name, count in counts.items()
            )
            self.stdout.write(f"{table}: {shown}")
            if counts["other key"]:
                self.stderr.write(
                    f"{table}: {counts['other key']:,} values are under a key that "
                    "PERSONAL_DATA_KEYS no longer lists: add it back after the current key "
                    "and run `personal_data_key rotate`."
                )
