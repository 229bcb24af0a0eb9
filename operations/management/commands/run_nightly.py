"""`python manage.py run_nightly [--date YYYY-MM-DD | --from D1 --to D2]`: the nightly chain,
synchronously, for one business date or for each date of a range in order (a catch-up)."""

from django.core.management.base import BaseCommand, CommandError

from members.feeds import parse_date
from operations.nightly import nightly_run
from portal.clock import today_in_shanghai
from portal.jobs import JobAlreadyRunning, jobrun_runner

#: the exit status when the date is being run by another live chain (docs/api.md)
EXIT_ALREADY_RUNNING = 3
#: a catch-up runs at most this many dates
MAX_DATES = 366


def _date(option: str, text: str):
    day = parse_date(text)
    if day is None:
        raise CommandError(f"{option} {text!r} is not a YYYY-MM-DD date.")
    return day


class Command(BaseCommand):
    help = (
        "Run the nightly chain for one business date (default: today, Asia/Shanghai), or for "
        "each date from --from to --to in order. One line per step. Exits with 3, naming the "
        "running job, when another run of the date is alive."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", dest="business_date", help="YYYY-MM-DD")
        parser.add_argument("--from", dest="first", help="first date of a catch-up, YYYY-MM-DD")
        parser.add_argument("--to", dest="last", help="last date of a catch-up, YYYY-MM-DD")

    def handle(self, *args, business_date=None, first=None, last=None, **options):
        if business_date and (first or last):
            raise CommandError("Give either --date or --from/--to, not both.")
        if first or last:
            start = _date("--from", first) if first else None
            end = _date("--to", last) if last else today_in_shanghai()
            start = start or end
            if start > end:
                raise CommandError(f"--from {start} is after --to {end}.")
            if (end - start).days >= MAX_DATES:
                raise CommandError(f"A catch-up runs at most {MAX_DATES} dates at a time.")
            days = [start.fromordinal(n) for n in range(start.toordinal(), end.toordinal() + 1)]
        else:
            days = [_date("--date", business_date) if business_date else today_in_shanghai()]

        def report(run) -> None:
            counts = " ".join(f"{key}={value}" for key, value in run.counts.items())
            seconds = run.duration.total_seconds() if run.duration else 0
            self.stdout.write(f"{run.kind}: {run.status} {counts} ({seconds:.1f}s)")
            if run.message:
                self.stderr.write(f"  {run.message}")

        for day in days:
            if len(days) > 1:
                self.stdout.write(f"== {day}")
            try:
                nightly_run(business_date=day, report=report, runner=jobrun_runner("run_nightly"))
            except JobAlreadyRunning as exc:
                raise CommandError(str(exc), returncode=EXIT_ALREADY_RUNNING) from None
            except Exception as exc:
                raise CommandError(
                    f"nightly chain for {day} stopped: {exc}. The failed step's JobRun has the "
                    f"details; fix the cause and run `manage.py run_nightly --date {day}` again."
                ) from exc
