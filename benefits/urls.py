"""Benefit pages on a customer, under /members/<member_no>/ (namespace `members`, mounted by
`config.urls`)."""

from django.urls import path

from . import views

customer_patterns = [
    path("<str:member_no>/feedback/", views.benefit_feedback_view, name="feedback"),
]
