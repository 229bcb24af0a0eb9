"""The admin's door to maker-checker: "Approve" and "Reject" on the change page of an object
that waits for a decision, each a dialog (a rejection asks why) that calls the approval
engine's one door, `approval_decide`."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action as unfold_action
from unfold.enums import ActionVariant
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminTextareaWidget

from .approvals import (
    approval_decide,
    approval_kind,
    approval_may_decide,
    approval_pending_for,
    approval_waiting_on,
)
from .errors import DomainError
from .permissions import user_can

__all__ = ["ApprovalDoorAdminMixin", "ApproveForm", "RejectForm", "approval_sent_response"]


def approval_sent_response(model_admin, request, approval, message=None) -> HttpResponse:
    """After a save that became a proposal: say so (`message`, with the request's
    `summary`) and open the request's page, where its impact is."""
    model_admin.message_user(
        request,
        (
            message
            or _("Sent for approval: %(summary)s. It applies when a budget approver approves it.")
        )
        % {"summary": approval.summary},
        messages.SUCCESS,
    )
    return redirect("approval-detail", pk=approval.pk)


class ApproveForm(BaseDialogForm):
    comment = forms.CharField(
        label=_("Comment"), max_length=255, required=False, widget=UnfoldAdminTextareaWidget
    )


class RejectForm(BaseDialogForm):
    comment = forms.CharField(
        label=_("Why is it rejected?"), max_length=255, widget=UnfoldAdminTextareaWidget
    )


class ApprovalDoorAdminMixin:
    """Add `"approve_detail"` and `"reject_detail"` to a model admin's `actions_detail`; set
    `approval_kind_code` to the kind of request the object waits on. The two show only on an
    object whose request is pending."""

    approval_kind_code: str
    APPROVAL_DOOR_ACTIONS = frozenset({"approve_detail", "reject_detail"})

    def get_actions_detail(self, request, object_id):
        """Approve and Reject only while the object's request waits, and only to a user who
        may decide it (`approval_may_decide`: not its maker, within its scope)."""
        actions = super().get_actions_detail(request, object_id)
        obj = self.get_object(request, object_id)
        approval = approval_waiting_on(kind=self.approval_kind_code, obj=obj) if obj else None
        if approval is not None and approval_may_decide(approval=approval, user=request.user):
            return actions
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_"
        return [
            action
            for action in actions
            if action.action_name.removeprefix(prefix) not in self.APPROVAL_DOOR_ACTIONS
        ]

    def has_approve_permission(self, request, obj=None) -> bool:
        return user_can(request.user, approval_kind(self.approval_kind_code).approve_action)

    def approval_door_label(self, obj) -> str:
        """How messages name the object."""
        return str(obj)

    def approval_door_done(self, obj, *, approve: bool) -> str:
        return str(_("approved.") if approve else _("rejected."))

    def approval_door_apply(self, request, object_id, change, done) -> HttpResponse:
        """Run `change(obj)`, report it (or the refusal) as a message and go back to the
        change page (an htmx dialog is told to reload it)."""
        obj = self.get_object(request, object_id)
        if obj is None:
            raise PermissionDenied
        try:
            change(obj)
        except DomainError as exc:
            self.message_user(request, f"{self.approval_door_label(obj)}: {exc}", messages.ERROR)
        else:
            self.message_user(
                request, f"{self.approval_door_label(obj)}: {done(obj)}", messages.SUCCESS
            )
        meta = self.model._meta
        url = reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[obj.pk])
        if request.headers.get("HX-Request"):
            return HttpResponse(headers={"HX-Redirect": url})
        return redirect(url)

    def _approval_decide(self, request, form, object_id, *, approve: bool) -> HttpResponse:
        def decide(obj):
            approval_decide(
                approval=approval_pending_for(kind=self.approval_kind_code, obj=obj),
                approve=approve,
                actor=request.user,
                comment=form.cleaned_data["comment"],
            )

        return self.approval_door_apply(
            request,
            object_id,
            decide,
            lambda obj: self.approval_door_done(obj, approve=approve),
        )

    @unfold_action(
        description=_("Approve"),
        url_path="approve",
        permissions=["approve"],
        variant=ActionVariant.SUCCESS,
        dialog={
            "title": _("Approve"),
            "description": _("Nobody decides a change they made; the change applies now."),
            "form_class": ApproveForm,
            "form_submit_text": _("Approve"),
        },
    )
    def approve_detail(self, request, form, object_id):
        return self._approval_decide(request, form, object_id, approve=True)

    @unfold_action(
        description=_("Reject"),
        url_path="reject",
        permissions=["approve"],
        variant=ActionVariant.DANGER,
        dialog={
            "title": _("Reject"),
            "description": _("Say why: the proposer reads it."),
            "form_class": RejectForm,
            "form_submit_text": _("Reject"),
        },
    )
    def reject_detail(self, request, form, object_id):
        return self._approval_decide(request, form, object_id, approve=False)
