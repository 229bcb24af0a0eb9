"""Benefit pages on a customer, under /members/<member_no>/ (namespace `members`, mounted by
`config.urls`)."""

from django.urls import path

import portal.converters  # noqa: F401 - registers the <member_no:…> path converter

from . import views

customer_patterns = [
    path("<member_no:member_no>/feedback/", views.benefit_feedback_view, name="feedback"),
]
