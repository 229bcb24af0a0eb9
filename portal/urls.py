"""The kernel's pages: the approvals inbox and the audit trail."""

from django.urls import path

from . import audit_views, views

urlpatterns = [
    path("approvals/", views.approval_list_view, name="approvals"),
    path("approvals/<int:pk>/", views.approval_detail_view, name="approval-detail"),
    path("approvals/<int:pk>/decide/", views.approval_decide_view, name="approval-decide"),
    path("audit/", audit_views.audit_list_view, name="audit"),
]
