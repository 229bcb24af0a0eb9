"""The one error hierarchy of the project's domain rules.

A service refuses what its rules do not allow by raising a `DomainError` whose message
says, in the user's language, why and what to do. Every door maps the class once: the DRF
exception handler (`portal.api.exceptions`) answers 403 / 409 / 400 (or the class's own
status) as `{"detail", "code"}`; forms show it as a field error (`field`) or a form error
(`form_add_domain_error`); admin actions show it as a message. Never sort exceptions by
the module they come from.
"""

from __future__ import annotations

__all__ = [
    "DomainError",
    "InvalidInput",
    "NotAllowed",
    "NotFound",
    "StateConflict",
    "form_add_domain_error",
]


class DomainError(Exception):
    """A domain rule refused the request; nothing was written."""

    #: HTTP status the API answers with
    http_status: int = 400
    #: machine-readable code of the API's error body
    code: str = "invalid"

    def __init__(
        self,
        message: str = "",
        *,
        field: str | None = None,
        code: str | None = None,
        details: dict | None = None,
    ):
        super().__init__(message)
        self.message = str(message)
        #: the input field the refusal is about (a form or API field error), if any
        self.field = field
        if code is not None:
            self.code = code
        #: more facts for the API's error body (e.g. a limit), JSON values
        self.details = details or {}

    def __str__(self) -> str:
        return self.message


class InvalidInput(DomainError):
    """The input breaks a rule (missing reason, amount out of range, unknown code…)."""

    http_status = 400
    code = "invalid"


class NotAllowed(DomainError):
    """The user may not do this (role, scope, their own request)."""

    http_status = 403
    code = "not_allowed"


class NotFound(DomainError):
    """The object asked for does not exist in the user's scope."""

    http_status = 404
    code = "not_found"


class StateConflict(DomainError):
    """The object is not in a state that allows this (already decided, exhausted budget…)."""

    http_status = 409
    code = "conflict"


def form_add_domain_error(form, error: DomainError) -> None:
    """Show a refusal on a Django form: on its field when the form has it, else on the
    form as a whole."""
    field = error.field if error.field in getattr(form, "fields", {}) else None
    form.add_error(field, error.message)
