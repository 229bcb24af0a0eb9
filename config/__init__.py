"""The composition root: settings, URLs, WSGI/ASGI entry points, the Celery app and its
schedules. Nothing imports `config` except Django, Celery and the entry points."""

from .celery import app as celery_app

__all__ = ["celery_app"]
