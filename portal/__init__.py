"""Membership Operations Portal: project package and the cross-cutting `portal` app."""

from .celery import app as celery_app

__all__ = ["celery_app"]
