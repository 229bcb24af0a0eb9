"""`python manage.py seed_demo [--members N] [--seed S]`: a realistic demo bank."""

import sys
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from members.models import Member
from operations.demo import (
    DEMO_PASSWORD,
    STAFF,
    DemoSeedPlan,
    DemoSeedRefused,
    DemoSeedStopped,
    DemoSeedUnfinished,
    demo_seed_check,
    seed_demo_bank,
)
from portal.choices import Role
from portal.clock import today_in_shanghai

#: the largest demo bank (measured: 100,000 members seed in about 45 minutes on 2 cores)
MAX_MEMBERS = 100_000


class Command(BaseCommand):
    help = (
        "Create a deterministic demo bank: branches, staff of every role, members, feeds. "
        "Seeds an empty database only; an interrupted seed is finished by running the same "
        "command again."
    )

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
        if not 1 <= members <= MAX_MEMBERS:
            raise CommandError(
                f"--members must be from 1 to {MAX_MEMBERS:,}: the demo bank's budgets and "
                "feeds are sized and measured up to that."
            )
        day = date.fromisoformat(as_of) if as_of else today_in_shanghai()
        if if_empty and Member.objects.exists():
            try:
                demo_seed_check(DemoSeedPlan(members=members, seed=seed, as_of=day))
            except DemoSeedUnfinished as unfinished:
                self.stderr.write(str(unfinished))  # `make run` would serve half a bank
            except DemoSeedRefused:
                pass
            self.stdout.write("Demo data already present; nothing to do.")
            return
        started = time.monotonic()
        try:
            result = seed_demo_bank(
                members=members,
                seed=seed,
                as_of=day,
                progress=lambda message: print(message, file=sys.stderr, flush=True),
            )
        except (DemoSeedRefused, DemoSeedStopped) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Seeded {result['members']:,} members and {result['feed_rows']:,} feed rows "
            f"from {result['first_day']} in {time.monotonic() - started:.1f}s."
        )
        self.stdout.write(f"\nDemo logins (password for all: {DEMO_PASSWORD}):")
        for username, (surname, given), role, branch, _department in STAFF:
            if role != Role.SYSTEM:
                self.stdout.write(f"  {username:<16} {role.value:<20} {branch:<6} {surname}{given}")
        self.stdout.write("\nSystem integration accounts (no password: the API token only):")
        for username, (surname, given), role, branch, _department in STAFF:
            if role == Role.SYSTEM:
                self.stdout.write(f"  {username:<16} {role.value:<20} {branch:<6} {surname}{given}")
        self.stdout.write(f"\nAPI token of mobile_banking: {result['api_token']}")
