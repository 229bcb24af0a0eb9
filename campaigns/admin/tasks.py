"""The task admin: a task with its ladder steps, written together by one configuration
service. Once its campaign is launched (scheduled, active, paused) the page offers only the
name and description, which apply at once, and the rewards (the steps' too) and caps, which
saving sends for approval (`services.changes`); waiting for approval, or ended, it is
read-only."""

from __future__ import annotations

from django.contrib import admin
from django.forms.models import BaseModelFormSet
from unfold.admin import TabularInline

from benefits.models import Benefit
from portal.admin_base import MatrixInlineMixin, MatrixModelAdmin

from ..choices import EDITABLE_STATUSES
from ..models import Campaign, Task, TaskStep
from ..services.changes import STEP_COST, TASK_AT_ONCE, TASK_COST, campaign_is_launched
from ..services.config import (
    STEP_CONFIG_FIELDS,
    TASK_CONFIG_FIELDS,
    task_create,
    task_delete,
    task_update,
)
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
from .forms import TaskForm, TaskStepFormSet

__all__ = ["TaskAdmin", "TaskStepInline"]


def _ladder(formset: BaseModelFormSet | None) -> list[dict] | None:
    """The ladder the step forms describe, as a whole (None: not on the page, or untouched)."""
    if formset is None or not formset.has_changed():
        return None
    deleted = formset.deleted_forms if formset.can_delete else []
    return [
        form_values(form, STEP_CONFIG_FIELDS)
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


class TaskStepInline(MatrixInlineMixin, TabularInline):
    model = TaskStep
    formset = TaskStepFormSet
    extra = 0
    view_action = VIEW
    change_action = CONFIGURE
    fields = list(STEP_CONFIG_FIELDS)

    def is_editable(self, obj) -> bool:
        return obj.campaign.is_editable or campaign_is_launched(obj.campaign)

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and (
            obj is None or obj.campaign.is_editable
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (
            obj is None or obj.campaign.is_editable
        )

    def get_readonly_fields(self, request, obj=None):
        fixed = []
        if obj is not None and campaign_is_launched(obj.campaign):  # a launched ladder's steps
            fixed = [f for f in STEP_CONFIG_FIELDS if f not in STEP_COST]
        return [*super().get_readonly_fields(request, obj), *fixed]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Benefit:
            kwargs["queryset"] = Benefit.objects.filter(active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Task)
class TaskAdmin(ActiveChoicesMixin, MatrixModelAdmin):
    """A task with its ladder steps (steps 1/2/3 with rising targets and rewards)."""

    view_action = VIEW
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
        if obj is not None and not (obj.campaign.is_editable or campaign_is_launched(obj.campaign)):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and not obj.campaign.is_editable:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and campaign_is_launched(obj.campaign):  # approved as it is
            fields += [
                f for f in ("campaign", *TASK_CONFIG_FIELDS) if f not in (*TASK_AT_ONCE, *TASK_COST)
            ]
        return fields

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
        if change and campaign_is_launched(obj.campaign):
            self._launched_change(request, form, steps_formset)
            for formset in formsets:
                _steps_for_log(formset, task=obj)
            return
        steps = _ladder(steps_formset)
        values = form_values(form, TASK_CONFIG_FIELDS)
        with refused_when_not_editable():
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
        adopt(obj, saved)
        for formset in formsets:
            _steps_for_log(formset, task=saved)

    def _launched_change(self, request, form, steps_formset) -> None:
        """A launched campaign's task: name and description at once, rewards (the whole
        ladder's, step by step) and caps as a proposal."""
        values = form_values(form, TASK_CONFIG_FIELDS)
        if steps_formset is not None and steps_formset.has_changed():
            values["steps"] = [
                {
                    "step_no": step_form.instance.step_no,
                    "target": step_form.instance.target,
                    **form_values(step_form, STEP_COST),
                }
                for step_form in steps_formset.forms
                if step_form.instance.pk
            ]
        change_propose(request, campaign=form.instance.campaign, tasks={form.instance.pk: values})
        form.instance.refresh_from_db()

    def response_change(self, request, obj):
        return change_answer(self, request, obj) or super().response_change(request, obj)

    def delete_model(self, request, obj: Task) -> None:
        with refused_when_not_editable():
            task_delete(task=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for task in queryset.order_by("pk"):
            self.delete_model(request, task)
