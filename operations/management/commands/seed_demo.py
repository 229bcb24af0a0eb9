"""`python manage.py seed_demo [--members N] [--seed S]`: a realistic demo bank."""

import sys
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from members.models import Member
from operations.demo import DEMO_PASSWORD, STAFF, seed_demo_bank
from portal.clock import today_in_shanghai


class Command(BaseCommand):
    help = "Create a deterministic demo bank: branches, staff of every role, members, feeds."

    def add_arguments(self, parser):
        parser.add_argument("--members", type=int, default=2000)
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the database already has members (used by `make run`).",
        )

    def handle(self, *args, members: int, seed: int, as_of: str | None, if_empty: bool, **options):
        if members < 1:
            raise CommandError("--members must be at least 1.")
        if if_empty and Member.objects.exists():
            self.stdout.write("Demo data already present; nothing to do.")
            return
        day = date.fromisoformat(as_of) if as_of else today_in_shanghai()
        started = time.monotonic()
        result = seed_demo_bank(
            members=members,
            seed=seed,
            as_of=day,
            progress=lambda message: print(message, file=sys.stderr, flush=True),
        )
        self.stdout.write(
            f"Seeded {result['members']:,} members and {result['feed_rows']:,} feed rows "
            f"from {result['first_day']} in {time.monotonic() - started:.1f}s."
        )
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for username, full_name, role, branch, _department in STAFF:
            self.stdout.write(f"  {username:<16} {role.value:<20} {branch:<6} {full_name}")
        self.stdout.write(f"\nAPI token of mobile_banking: {result['api_token']}")
