"""The campaign admin: a campaign built with its tasks on one page; submit, approve, reject,
pause, resume and end go through the services (approve and reject through the approval
engine, so the maker-checker rule applies). A campaign (and its tasks) can be changed freely
while it is a draft or rejected. Once launched (scheduled, active, paused) the page offers
only names and descriptions, which apply at once, and the tasks' rewards and caps and the
budget, which saving sends for approval (`services.changes`, one proposal for the page);
waiting for approval, or ended, it is read-only. Its status moves only through the workflow
buttons."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import StackedInline
from unfold.decorators import action as unfold_action
from unfold.enums import ActionVariant

from portal.admin_approvals import ApprovalDoorAdminMixin
from portal.admin_base import MatrixInlineMixin, MatrixModelAdmin
from portal.errors import DomainError
from portal.permissions import user_can

from ..choices import CampaignApproval
from ..models import Campaign, Task
from ..services import campaign_launch_problems, campaign_operate, campaign_submit
from ..services.changes import (
    CAMPAIGN_AT_ONCE,
    CAMPAIGN_COST,
    TASK_AT_ONCE,
    TASK_COST,
    campaign_is_launched,
)
from ..services.config import (
    CAMPAIGN_CONFIG_FIELDS,
    TASK_CONFIG_FIELDS,
    campaign_create,
    campaign_update,
    task_create,
    task_delete,
    task_update,
)
from ..transitions import TRANSITIONS
from .base import (
    CONFIGURE,
    VIEW,
    ActiveChoicesMixin,
    adopt,
    change_answer,
    change_propose,
    form_values,
    refused_when_not_editable,
)
from .forms import CampaignForm, ConfirmForm, ReasonForm, TaskInlineForm

__all__ = ["CampaignAdmin", "TaskInline"]


class TaskInline(ActiveChoicesMixin, MatrixInlineMixin, StackedInline):
    model = Task
    form = TaskInlineForm
    extra = 0
    show_change_link = True
    view_action = VIEW
    change_action = CONFIGURE
    fields = [
        ("name", "position"),
        ("event_type", "measure", "target"),
        ("recurrence", "difficulty", "min_event_amount"),
        ("reward_points", "reward_benefit"),
        ("max_rewards_per_member", "max_rewards_per_period"),
        "offered_tiers",
        "offered_stages",
        "description",
    ]

    def is_editable(self, obj) -> bool:
        return obj.is_editable or campaign_is_launched(obj)

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and (obj is None or obj.is_editable)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_editable)

    def get_readonly_fields(self, request, obj=None):
        fixed = []
        if obj is not None and campaign_is_launched(obj):  # the rest was approved as it is
            fixed = [f for f in TASK_CONFIG_FIELDS if f not in (*TASK_AT_ONCE, *TASK_COST)]
        return [*super().get_readonly_fields(request, obj), *fixed]


@admin.register(Campaign)
class CampaignAdmin(ApprovalDoorAdminMixin, ActiveChoicesMixin, MatrixModelAdmin):
    """A campaign with its tasks. Status and the approval fields are never edited here."""

    view_action = VIEW
    change_action = CONFIGURE
    approval_kind_code = CampaignApproval.CAMPAIGN_LAUNCH
    form = CampaignForm
    inlines = [TaskInline]
    list_display = [
        "code",
        "name",
        "department",
        "budget",
        "starts_on",
        "ends_on",
        "holdout_share",
        "status",
        "created_by",
    ]
    list_filter = ["status", "department"]
    search_fields = ["code", "name"]
    list_select_related = ["department", "budget", "created_by"]
    readonly_fields = [
        "status",
        "created_by",
        "submitted_by",
        "submitted_at",
        "decided_by",
        "decided_at",
        "decision_comment",
        "launch_problems",
        "effect_page",
    ]
    actions = ["submit_for_approval"]
    actions_detail = [
        "submit_detail",
        "approve_detail",
        "reject_detail",
        "pause_detail",
        "resume_detail",
        "end_detail",
    ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (
                None,
                {
                    "fields": [
                        ("code", "name"),
                        "description",
                        ("department", "budget"),
                        ("starts_on", "ends_on"),
                    ]
                },
            ),
            (_("Who is targeted"), {"fields": ["target_tiers", "target_stages", "segments"]}),
            (
                _("Measuring the effect"),
                {
                    "fields": [("holdout_share", "follow_up_days")]
                    + (["effect_page"] if obj is not None else []),
                    "description": _(
                        "A share of the audience, drawn at random and the same every night, "
                        "is not offered the tasks: the campaign's uplift is what those offered "
                        "did beyond them. Chosen before launch."
                    ),
                },
            ),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    _("Approval"),
                    {
                        "fields": [
                            "status",
                            "launch_problems",
                            ("created_by", "submitted_by", "submitted_at"),
                            ("decided_by", "decided_at"),
                            "decision_comment",
                        ]
                    },
                )
            )
        return fieldsets

    @admin.display(description=_("effect against the holdout"))
    def effect_page(self, campaign: Campaign) -> str:
        if campaign.pk is None or not campaign.holdout_share:
            return "-"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("campaign-effect", kwargs={"code": campaign.code}),
            _("Open the campaign's effect page"),
        )

    @admin.display(description=_("before it can be submitted"))
    def launch_problems(self, campaign: Campaign) -> str:
        if campaign.pk is None or not campaign.is_editable:
            return "-"
        return " ".join(campaign_launch_problems(campaign=campaign)) or _("Ready to submit.")

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not (obj.is_editable or campaign_is_launched(obj)):
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and campaign_is_launched(obj):  # the rest was approved as it is
            fields += [
                f for f in CAMPAIGN_CONFIG_FIELDS if f not in (*CAMPAIGN_AT_ONCE, *CAMPAIGN_COST)
            ]
        return fields

    def save_model(self, request, obj: Campaign, form, change) -> None:
        if change and campaign_is_launched(obj):
            return  # with its tasks, as one change, in `save_related`
        values = form_values(form, CAMPAIGN_CONFIG_FIELDS)
        with refused_when_not_editable():
            if change:
                saved = campaign_update(campaign=obj, actor=request.user, changes=values)
            else:
                saved = campaign_create(actor=request.user, data=values)
        adopt(obj, saved)

    def save_related(self, request, form, formsets, change) -> None:
        if change and campaign_is_launched(form.instance):
            self._launched_change(request, form, formsets)
            return
        # the service set the many-to-many fields with the row: only the inlines are left
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def _launched_change(self, request, form, formsets) -> None:
        """A launched campaign's page is one change: the campaign's values and every task
        changed on it (the service applies names at once and proposes the rest)."""
        tasks = {}
        for formset in formsets:
            if formset.model is not Task:
                continue
            formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
            for task_form in formset.forms:
                if task_form.instance.pk and task_form.has_changed():
                    tasks[task_form.instance.pk] = form_values(task_form, TASK_CONFIG_FIELDS)
                    formset.changed_objects.append((task_form.instance, task_form.changed_data))
        change_propose(
            request,
            campaign=form.instance,
            changes=form_values(form, CAMPAIGN_CONFIG_FIELDS),
            tasks=tasks,
        )
        form.instance.refresh_from_db()

    def response_change(self, request, obj):
        return change_answer(self, request, obj) or super().response_change(request, obj)

    def save_formset(self, request, form, formset, change) -> None:
        """Each task added, changed or deleted on the campaign page goes through its
        service (the saved ladder must still fit a changed measure)."""
        if formset.model is not Task:
            return super().save_formset(request, form, formset, change)
        deleted = formset.deleted_forms if formset.can_delete else []
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        with refused_when_not_editable():
            for task_form in formset.forms:
                task = task_form.instance
                if task_form in deleted:
                    if task.pk:
                        task_delete(task=task, actor=request.user)
                        formset.deleted_objects.append(task)
                elif not task_form.has_changed():
                    continue
                elif task.pk:
                    task = task_update(
                        task=task,
                        actor=request.user,
                        changes=form_values(task_form, TASK_CONFIG_FIELDS),
                    )
                    formset.changed_objects.append((task, task_form.changed_data))
                else:
                    task = task_create(
                        campaign=form.instance,
                        actor=request.user,
                        data=form_values(task_form, TASK_CONFIG_FIELDS),
                    )
                    formset.new_objects.append(task)

    # --- the workflow: every move goes through a service ---

    # Permission methods of the workflow actions (unfold passes the object id on the change
    # page; the state is the service's to check).
    def has_submit_permission(self, request, obj=None) -> bool:
        return user_can(request.user, CONFIGURE)

    def has_operate_permission(self, request, obj=None) -> bool:
        return user_can(request.user, "campaigns.operate_campaign")

    @admin.action(description=_("Submit for approval"), permissions=["submit"])
    def submit_for_approval(self, request, queryset):
        submitted = 0
        for campaign in queryset:
            try:
                campaign_submit(campaign=campaign, actor=request.user)
            except DomainError as exc:
                self.message_user(request, f"{campaign.code}: {exc}", messages.ERROR)
            else:
                submitted += 1
        if submitted:
            self.message_user(
                request,
                _("%d campaign(s) submitted; a budget approver decides.") % submitted,
                messages.SUCCESS,
            )

    #: the move behind each workflow button: a campaign shows the buttons of the moves its
    #: status allows (`campaigns.transitions`)
    DETAIL_ACTION_TRANSITIONS = {
        "submit_detail": TRANSITIONS["submit"],
        "pause_detail": TRANSITIONS["pause"],
        "resume_detail": TRANSITIONS["resume"],
        "end_detail": TRANSITIONS["end"],
    }

    def get_actions_detail(self, request, object_id):
        allowed = super().get_actions_detail(request, object_id)
        campaign = self.get_object(request, object_id)
        if campaign is None:
            return []
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_"
        shown = []
        for action in allowed:
            transition = self.DETAIL_ACTION_TRANSITIONS.get(action.action_name.removeprefix(prefix))
            # Approve / Reject: shown by ApprovalDoorAdminMixin while the launch is pending
            if transition is None or transition.may_start(campaign.status):
                shown.append(action)
        return shown

    def approval_door_label(self, obj) -> str:
        return obj.code

    def approval_door_done(self, obj, *, approve: bool) -> str:
        return str(_("approved.") if approve else _("rejected; back to its author."))

    def _apply(self, request, object_id, change, done: str):
        return self.approval_door_apply(request, object_id, change, lambda campaign: done)

    @unfold_action(
        description=_("Submit for approval"),
        url_path="submit",
        permissions=["submit"],
        variant=ActionVariant.PRIMARY,
        dialog={
            "title": _("Submit for approval"),
            "description": _("A budget approver other than you decides on the launch."),
            "form_class": ConfirmForm,
            "form_submit_text": _("Submit"),
        },
    )
    def submit_detail(self, request, form, object_id):
        return self._apply(
            request,
            object_id,
            lambda c: campaign_submit(campaign=c, actor=request.user),
            _("submitted; a budget approver decides."),
        )

    def _operate_detail(self, request, form, object_id, operation: str, done: str):
        reason = form.cleaned_data["reason"]
        return self._apply(
            request,
            object_id,
            lambda c: campaign_operate(
                campaign=c, operation=operation, actor=request.user, reason=reason
            ),
            done,
        )

    @unfold_action(
        description=_("Pause"),
        url_path="pause",
        permissions=["operate"],
        dialog={"title": _("Pause the campaign"), "form_class": ReasonForm},
    )
    def pause_detail(self, request, form, object_id):
        return self._operate_detail(request, form, object_id, "pause", _("paused."))

    @unfold_action(
        description=_("Resume"),
        url_path="resume",
        permissions=["operate"],
        dialog={"title": _("Resume the campaign"), "form_class": ReasonForm},
    )
    def resume_detail(self, request, form, object_id):
        return self._operate_detail(request, form, object_id, "resume", _("resumed."))

    @unfold_action(
        description=_("End"),
        url_path="end",
        permissions=["operate"],
        variant=ActionVariant.DANGER,
        dialog={"title": _("End the campaign for good"), "form_class": ReasonForm},
    )
    def end_detail(self, request, form, object_id):
        return self._operate_detail(request, form, object_id, "end", _("ended."))
