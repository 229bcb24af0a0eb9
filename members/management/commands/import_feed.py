"""`python manage.py import_feed KIND FILE` (API.md, "Feeds")."""

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from members.choices import FeedStatus
from members.feeds import FEED_FORMATS
from members.services import FeedFileError, feed_import


class Command(BaseCommand):
    help = (
        "Import one data-warehouse feed file. Prints 'received=N accepted=N duplicates=N "
        "rejected=N'; exits non-zero only when the file cannot be read or has the wrong header."
    )

    def add_arguments(self, parser):
        parser.add_argument("kind", choices=list(FEED_FORMATS))
        parser.add_argument("file", type=Path)

    def handle(self, *args, kind: str, file: Path, **options):
        def progress(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

        try:
            with file.open("rb") as handle:
                batch = feed_import(kind=kind, file=handle, file_name=file.name, progress=progress)
        except FileNotFoundError:
            raise CommandError(f"{file}: no such file. Check the path and run again.") from None
        except (OSError, FeedFileError) as exc:
            raise CommandError(
                f"{file}: {exc}. Nothing was imported; fix the file and run again."
            ) from None
        except DatabaseError as exc:
            raise CommandError(
                f"{file}: the import stopped on a database error ({exc}). Nothing was kept; "
                "the feed batch is marked FAILED; run again when the database is back."
            ) from exc
        if batch.status == FeedStatus.REJECTED:
            self.stderr.write(
                f"Every row was rejected: feed batch #{batch.pk} is REJECTED and nothing was "
                "loaded. The rows are kept with line and reason (portal: Feeds)."
            )
        elif batch.rejected:
            self.stderr.write(
                f"{batch.rejected} rejected rows are kept with line and reason in feed batch "
                f"#{batch.pk} (portal: Feeds)."
            )
        # the one summary line of API.md, last on the screen
        self.stdout.write(
            f"received={batch.received} accepted={batch.accepted} "
            f"duplicates={batch.duplicates} rejected={batch.rejected}"
        )
