"""Logging that never writes personal data: every handler in `settings.LOGGING` carries
`PersonalDataFilter`, and error e-mails are built by `MaskingExceptionReporter`."""

from __future__ import annotations

import logging

from django.views.debug import ExceptionReporter

from .masking import mask_personal_numbers

__all__ = ["MaskingExceptionReporter", "PersonalDataFilter", "mask_log_text"]

_exception_formatter = logging.Formatter()


def mask_log_text(text: str) -> str:
    """Mask mainland mobile numbers (``13900000001``, ``139 0000 0001``, ``+86-139-…``,
    ``(+86) …``) and 15/18-character ID numbers (a check letter ``X`` or ``x``), also as a
    request line writes them percent-encoded (``q=%2B8613900000001``, ``139%200000…``); other
    numbers (amounts, dates, counts, ids, member numbers) stay readable."""
    return mask_personal_numbers(text, broad=False)


class PersonalDataFilter(logging.Filter):
    """Rewrites a record before any handler formats it: the message with its arguments
    merged in, the exception text and the stack are masked. It never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format: keep both, masked
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_log_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = _exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_log_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_log_text(record.stack_info)
        return True


class MaskingExceptionReporter(ExceptionReporter):
    """Django's error report (the `mail_admins` e-mail) with personal numbers masked
    everywhere in it: the request path and GET values, POST values, frame variables."""

    def get_traceback_text(self) -> str:
        return mask_log_text(super().get_traceback_text())

    def get_traceback_html(self) -> str:
        return mask_log_text(super().get_traceback_html())
