"""`python manage.py run_nightly [--date YYYY-MM-DD]`: the whole nightly chain, synchronously."""

from django.core.management.base import BaseCommand, CommandError

from members.feeds import parse_date
from operations.nightly import nightly_run
from portal.clock import today_in_shanghai


class Command(BaseCommand):
    help = "Run the nightly chain for one business date (default: today, Asia/Shanghai)."

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="business_date", help="YYYY-MM-DD")

    def handle(self, *args, business_date: str | None = None, **options):
        if business_date is None:
            day = today_in_shanghai()
        else:
            day = parse_date(business_date)
            if day is None:
                raise CommandError(f"--date {business_date!r} is not a YYYY-MM-DD date.")

        def report(run) -> None:
            counts = " ".join(f"{key}={value}" for key, value in run.counts.items())
            seconds = run.duration.total_seconds() if run.duration else 0
            self.stdout.write(f"{run.kind}: {run.status} {counts} ({seconds:.1f}s)")
            if run.message:
                self.stderr.write(f"  {run.message}")

        try:
            nightly_run(business_date=day, report=report)
        except Exception as exc:
            raise CommandError(
                f"nightly chain for {day} stopped: {exc}. The failed step's JobRun has the "
                f"details; fix the cause and run `manage.py run_nightly --date {day}` again."
            ) from exc
