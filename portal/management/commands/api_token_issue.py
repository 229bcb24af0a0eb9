"""`python manage.py api_token_issue --user U --name NAME --scopes a,b [--valid-days N]`:
issue an API token for a client system and print its key once."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from portal.choices import ApiScope
from portal.models import User
from portal.services import ApiTokenError, api_token_issue


class Command(BaseCommand):
    help = (
        "Issue an API token with which a client system acts as a user, limited to scopes "
        f"({', '.join(ApiScope.values)}). Prints the key once; only its digest is stored."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="username the system acts as")
        parser.add_argument("--name", required=True, help='client system, e.g. "Mobile banking"')
        parser.add_argument("--scopes", required=True, help="comma separated, e.g. events-write")
        parser.add_argument(
            "--valid-days", type=int, help="expire after N days (default: until revoked)"
        )

    def handle(self, *args, user: str, name: str, scopes: str, valid_days: int | None, **options):
        account = User.objects.filter(username=user).first()
        if account is None:
            raise CommandError(f"No user {user!r}.")
        if valid_days is not None and valid_days < 1:
            raise CommandError("--valid-days must be at least 1.")
        expires_at = timezone.now() + timedelta(days=valid_days) if valid_days else None
        try:
            token, key = api_token_issue(
                user=account,
                name=name,
                scopes=[scope.strip() for scope in scopes.split(",") if scope.strip()],
                expires_at=expires_at,
                actor=None,
            )
        except ApiTokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(
            f"Issued {token} for {account.username}, scopes {', '.join(token.scopes)}"
            + (f", expires {timezone.localtime(expires_at):%Y-%m-%d %H:%M}" if expires_at else "")
            + ". The key is shown once:"
        )
        self.stdout.write(key)
