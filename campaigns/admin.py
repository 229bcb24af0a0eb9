"""Admin for the product team: a campaign is built with its tasks on one page, a task's
ladder steps on the task's page; approval, pause, resume and end go through the services
(so the maker-checker rule applies); member events, their batches and task completions are
read-only.

A campaign (and its tasks) can be changed only while it is a draft or rejected; after
that its pages are read-only and its status moves only through the workflow buttons. The
forms show the rules of `campaigns.services.config` next to their fields; saving and
deleting call its services, which enforce them again with the campaign row locked and
write the audit entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet, BaseModelFormSet
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import StackedInline, TabularInline
from unfold.decorators import action as unfold_action
from unfold.enums import ActionVariant
from unfold.forms import BaseDialogForm
from unfold.paginator import InfinitePaginator
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminTextareaWidget

from benefits.models import Benefit
from members.choices import LifecycleStage, SchemeStatus
from members.models import Tier
from members.selectors import member_scope
from portal.admin_approvals import ApprovalDoorAdminMixin, ApproveForm, RejectForm
from portal.admin_base import MatrixInlineMixin, MatrixModelAdmin
from portal.errors import DomainError
from portal.permissions import user_can

from .choices import EDITABLE_STATUSES, CampaignApproval, CampaignStatus
from .models import Campaign, EventBatch, MemberEvent, Task, TaskCompletion, TaskStep
from .services import (
    campaign_launch_problems,
    campaign_operate,
    campaign_submit,
)
from .services.config import (
    CAMPAIGN_CONFIG_FIELDS,
    STEP_CONFIG_FIELDS,
    TASK_CONFIG_FIELDS,
    CampaignNotEditable,
    campaign_create,
    campaign_update,
    ladder_problems,
    target_problems,
    task_create,
    task_delete,
    task_update,
    window_problems,
)

CONFIGURE = "campaigns.configure_campaigns"


def _stages_field(label: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label,
        choices=LifecycleStage.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("None ticked: every stage."),
    )


def _form_values(form: forms.BaseForm, names: tuple[str, ...]) -> dict:
    """The cleaned values of the fields among `names` that are on the form."""
    return {name: form.cleaned_data[name] for name in names if name in form.cleaned_data}


def _adopt(obj, saved) -> None:
    """The admin goes on with its own instance (inlines, log entry, redirect): make it the
    row the service wrote."""
    obj.pk = saved.pk
    obj._state.adding = False
    obj.refresh_from_db()


@contextmanager
def _refused_when_not_editable() -> Iterator[None]:
    """A campaign submitted since the page was opened is a 403, as the page itself is for a
    campaign that is no longer editable."""
    try:
        yield
    except CampaignNotEditable as exc:
        raise PermissionDenied(str(exc)) from exc


def _ladder(formset: BaseModelFormSet | None) -> list[dict] | None:
    """The ladder the step forms describe, as a whole (None: not on the page, or untouched)."""
    if formset is None or not formset.has_changed():
        return None
    deleted = formset.deleted_forms if formset.can_delete else []
    return [
        _form_values(form, STEP_CONFIG_FIELDS)
        for form in formset.forms
        if form not in deleted and (form.instance.pk or form.has_changed())
    ]


def _steps_for_log(formset: BaseModelFormSet, *, task: Task) -> None:
    """What the admin's change message lists of the step forms, whose rows the task service
    wrote (Django reads these after `save_formset`)."""
    deleted = formset.deleted_forms if formset.can_delete else []
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.forms:
        form.instance.task_id = task.pk
        if form in deleted:
            if form.instance.pk:
                formset.deleted_objects.append(form.instance)
        elif form.has_changed():
            if form.instance.pk:
                formset.changed_objects.append((form.instance, form.changed_data))
            else:
                formset.new_objects.append(form.instance)


# --- forms --------------------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    target_stages = _stages_field(_("target lifecycle stages"))

    class Meta:
        model = Campaign
        fields = list(CAMPAIGN_CONFIG_FIELDS)

    def clean(self):
        cleaned = super().clean()
        for problem in window_problems(
            starts_on=cleaned.get("starts_on"), ends_on=cleaned.get("ends_on")
        ):
            self.add_error("ends_on", problem)
        return cleaned


class TaskForm(forms.ModelForm):
    offered_stages = _stages_field(_("offered to lifecycle stages"))

    class Meta:
        model = Task
        fields = [
            "campaign",
            "name",
            "description",
            "event_type",
            "min_event_amount",
            "measure",
            "target",
            "recurrence",
            "difficulty",
            "reward_points",
            "reward_benefit",
            "max_rewards_per_member",
            "max_rewards_per_period",
            "offered_tiers",
            "offered_stages",
            "position",
        ]

    def clean(self):
        cleaned = super().clean()
        for problem in target_problems(
            measure=cleaned.get("measure"), target=cleaned.get("target")
        ):
            self.add_error("target", problem)
        return cleaned


class TaskInlineForm(TaskForm):
    """On the campaign page the steps are not on the form: a measure change must still fit
    the task's saved ladder."""

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk and "measure" in self.changed_data:
            steps = list(self.instance.steps.values_list("step_no", "target"))
            for problem in ladder_problems(measure=cleaned.get("measure"), steps=steps):
                self.add_error("measure", problem)
        return cleaned


class TaskStepFormSet(BaseInlineFormSet):
    """The ladder as a whole: steps 1..n with strictly rising targets fitting the measure."""

    def clean(self):
        super().clean()
        steps = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or data.get("step_no") is None:
                continue
            if data.get("target") is not None:
                steps.append((data["step_no"], data["target"]))
        problems = ladder_problems(measure=self.instance.measure, steps=steps)
        if problems:
            raise forms.ValidationError(problems)


class ConfirmForm(BaseDialogForm):
    pass


class ReasonForm(BaseDialogForm):
    reason = forms.CharField(
        label=_("Reason"), max_length=255, required=False, widget=UnfoldAdminTextareaWidget
    )


# --- campaigns and tasks ------------------------------------------------------------------------


class _ActiveChoicesMixin:
    """Tiers of the active scheme and active benefits only."""

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.related_model is Tier:
            kwargs["queryset"] = Tier.objects.filter(scheme__status=SchemeStatus.ACTIVE)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Benefit:
            kwargs["queryset"] = Benefit.objects.filter(active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TaskInline(_ActiveChoicesMixin, MatrixInlineMixin, StackedInline):
    model = Task
    form = TaskInlineForm
    extra = 0
    show_change_link = True
    view_action = "campaigns.view_campaigns"
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
        return obj.is_editable


@admin.register(Campaign)
class CampaignAdmin(ApprovalDoorAdminMixin, _ActiveChoicesMixin, MatrixModelAdmin):
    """A campaign with its tasks. Status and the approval fields are never edited here."""

    view_action = "campaigns.view_campaigns"
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

    @admin.display(description=_("before it can be submitted"))
    def launch_problems(self, campaign: Campaign) -> str:
        if campaign.pk is None or not campaign.is_editable:
            return "-"
        return " ".join(campaign_launch_problems(campaign=campaign)) or _("Ready to submit.")

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request, obj: Campaign, form, change) -> None:
        values = _form_values(form, CAMPAIGN_CONFIG_FIELDS)
        with _refused_when_not_editable():
            if change:
                saved = campaign_update(campaign=obj, actor=request.user, changes=values)
            else:
                saved = campaign_create(actor=request.user, data=values)
        _adopt(obj, saved)

    def save_related(self, request, form, formsets, change) -> None:
        # the service set the many-to-many fields with the row: only the inlines are left
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change) -> None:
        """Each task added, changed or deleted on the campaign page goes through its
        service (the saved ladder must still fit a changed measure)."""
        if formset.model is not Task:
            return super().save_formset(request, form, formset, change)
        deleted = formset.deleted_forms if formset.can_delete else []
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        with _refused_when_not_editable():
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
                        changes=_form_values(task_form, TASK_CONFIG_FIELDS),
                    )
                    formset.changed_objects.append((task, task_form.changed_data))
                else:
                    task = task_create(
                        campaign=form.instance,
                        actor=request.user,
                        data=_form_values(task_form, TASK_CONFIG_FIELDS),
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

    #: which workflow buttons a campaign in each status shows
    DETAIL_ACTIONS_BY_STATUS = {
        "submit_detail": EDITABLE_STATUSES,
        "approve_detail": (CampaignStatus.PENDING_APPROVAL,),
        "reject_detail": (CampaignStatus.PENDING_APPROVAL,),
        "pause_detail": (CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED),
        "resume_detail": (CampaignStatus.PAUSED,),
        "end_detail": (CampaignStatus.ACTIVE, CampaignStatus.SCHEDULED, CampaignStatus.PAUSED),
    }

    def get_actions_detail(self, request, object_id):
        allowed = super().get_actions_detail(request, object_id)
        campaign = self.get_object(request, object_id)
        if campaign is None:
            return []
        prefix = f"{self.model._meta.app_label}_{self.model._meta.model_name}_"
        return [
            action
            for action in allowed
            if campaign.status
            in self.DETAIL_ACTIONS_BY_STATUS.get(action.action_name.removeprefix(prefix), ())
        ]

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

    @unfold_action(
        description=_("Approve"),
        url_path="approve",
        permissions=["approve"],
        variant=ActionVariant.SUCCESS,
        dialog={
            "title": _("Approve the launch"),
            "description": _("Nobody approves a campaign they wrote or submitted."),
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
            "title": _("Reject the launch"),
            "description": _("The campaign goes back to its author as editable."),
            "form_class": RejectForm,
            "form_submit_text": _("Reject"),
        },
    )
    def reject_detail(self, request, form, object_id):
        return self._approval_decide(request, form, object_id, approve=False)

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


class TaskStepInline(MatrixInlineMixin, TabularInline):
    model = TaskStep
    formset = TaskStepFormSet
    extra = 0
    view_action = "campaigns.view_campaigns"
    change_action = CONFIGURE
    fields = list(STEP_CONFIG_FIELDS)

    def is_editable(self, obj) -> bool:
        return obj.campaign.is_editable

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Benefit:
            kwargs["queryset"] = Benefit.objects.filter(active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Task)
class TaskAdmin(_ActiveChoicesMixin, MatrixModelAdmin):
    """A task with its ladder steps (steps 1/2/3 with rising targets and rewards)."""

    view_action = "campaigns.view_campaigns"
    change_action = CONFIGURE
    form = TaskForm
    inlines = [TaskStepInline]
    list_display = [
        "campaign",
        "name",
        "event_type",
        "measure",
        "target",
        "recurrence",
        "difficulty",
        "reward_points",
        "position",
    ]
    list_filter = ["campaign__status", "event_type", "measure", "recurrence", "difficulty"]
    search_fields = ["name", "campaign__code"]
    list_select_related = ["campaign"]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.campaign.is_editable:
            return False
        return super().has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "campaign":
            kwargs["queryset"] = Campaign.objects.filter(status__in=EDITABLE_STATUSES)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj: Task, form, change) -> None:
        """Nothing yet: the task and its ladder are written together, by one service, in
        `save_related` (the only hook that sees both the form and the step forms)."""

    def save_related(self, request, form, formsets, change) -> None:
        obj = form.instance
        steps_formset = next((fs for fs in formsets if fs.model is TaskStep), None)
        steps = _ladder(steps_formset)
        values = _form_values(form, TASK_CONFIG_FIELDS)
        with _refused_when_not_editable():
            if change:
                if "campaign" in form.cleaned_data:  # the task may move to another draft
                    values["campaign"] = form.cleaned_data["campaign"]
                saved = task_update(task=obj, actor=request.user, changes=values, steps=steps)
            else:
                saved = task_create(
                    campaign=form.cleaned_data["campaign"],
                    actor=request.user,
                    data=values,
                    steps=steps or [],
                )
        _adopt(obj, saved)
        for formset in formsets:
            _steps_for_log(formset, task=saved)

    def delete_model(self, request, obj: Task) -> None:
        with _refused_when_not_editable():
            task_delete(task=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for task in queryset.order_by("pk"):
            self.delete_model(request, task)


# --- events and completions (read-only) --------------------------------------------------------


class _ScopedToMembersMixin:
    """Rows about members only for members the user may see (like the member list)."""

    def get_queryset(self, request):
        return super().get_queryset(request).filter(member__in=member_scope(user=request.user))


@admin.register(EventBatch)
class EventBatchAdmin(MatrixModelAdmin):
    """One POST of member events and how it reconciled, with every refused event."""

    view_action = "campaigns.view_events"
    list_display = [
        "id",
        "received_at",
        "client",
        "received",
        "accepted",
        "duplicates",
        "rejected",
        "completions",
    ]
    list_filter = ["client"]
    list_select_related = ["client"]
    date_hierarchy = "received_at"
    show_full_result_count = False
    exclude = ["rejections"]
    readonly_fields = [
        "client",
        "received_at",
        "received",
        "accepted",
        "duplicates",
        "rejected",
        "completions",
        "refusals",
    ]

    @admin.display(description=_("refused events"))
    def refusals(self, batch: EventBatch):
        if not batch.rejections:
            return "-"
        return format_html(
            '<pre class="whitespace-pre-wrap">{}</pre>',
            json.dumps(batch.rejections, ensure_ascii=False, indent=2),
        )


@admin.register(MemberEvent)
class MemberEventAdmin(_ScopedToMembersMixin, MatrixModelAdmin):
    """Member events as received; the member is shown by member_no only."""

    view_action = "campaigns.view_events"
    list_display = [
        "event_id",
        "member_no",
        "type",
        "amount",
        "occurred_at",
        "channel",
        "batch_id",
        "received_at",
    ]
    list_filter = ["type", "channel"]
    search_fields = ["=event_id", "=member__member_no"]
    list_select_related = ["member"]
    paginator = InfinitePaginator
    show_full_result_count = False
    exclude = ["amount_fen"]
    readonly_fields = [
        "event_id",
        "member",
        "type",
        "amount",
        "occurred_at",
        "occurred_on",
        "channel",
        "batch",
        "received_at",
    ]

    @admin.display(description=_("member"), ordering="member__member_no")
    def member_no(self, event: MemberEvent) -> str:
        return event.member.member_no

    @admin.display(description=_("amount (CNY)"))
    def amount(self, event: MemberEvent):
        return event.amount


@admin.register(TaskCompletion)
class TaskCompletionAdmin(_ScopedToMembersMixin, MatrixModelAdmin):
    """Completions with the reward issued, or why it was refused (budget, cap)."""

    view_action = "campaigns.view_events"
    list_display = [
        "completed_at",
        "member_no",
        "campaign",
        "task",
        "period_key",
        "step_no",
        "reward_status",
        "reward_points",
        "cost",
        "refusal_reason",
    ]
    list_filter = ["reward_status", "campaign"]
    search_fields = ["=member__member_no"]
    list_select_related = ["member", "campaign", "task__campaign"]
    show_full_result_count = False
    exclude = ["cost_fen"]
    readonly_fields = [
        "member",
        "campaign",
        "task",
        "period_key",
        "step_no",
        "completed_at",
        "reward_status",
        "reward_points",
        "points_entry",
        "grant",
        "cost",
        "refusal_reason",
        "stage_at_start",
    ]

    @admin.display(description=_("member"), ordering="member__member_no")
    def member_no(self, completion: TaskCompletion) -> str:
        return completion.member.member_no

    @admin.display(description=_("cost (CNY)"))
    def cost(self, completion: TaskCompletion):
        return completion.cost
