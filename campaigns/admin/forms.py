"""The admin forms of campaigns and tasks: they show the rules of `campaigns.services.config`
next to their fields (the services enforce them again when saving)."""

from __future__ import annotations

from django import forms
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _
from unfold.forms import BaseDialogForm
from unfold.widgets import UnfoldAdminCheckboxSelectMultipleWidget, UnfoldAdminTextareaWidget

from members.choices import LifecycleStage

from ..models import Campaign, Task
from ..services.config import (
    CAMPAIGN_CONFIG_FIELDS,
    TASK_BOUNDS,
    bound_problems,
    budget_window_problems,
    ladder_problems,
    target_problems,
    window_problems,
)

__all__ = [
    "CampaignForm",
    "ConfirmForm",
    "ReasonForm",
    "TaskForm",
    "TaskInlineForm",
    "TaskStepFormSet",
]


def _stages_field(label: str) -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=label,
        choices=LifecycleStage.choices,
        required=False,
        widget=UnfoldAdminCheckboxSelectMultipleWidget,
        help_text=_("None ticked: every stage."),
    )


class CampaignForm(forms.ModelForm):
    target_stages = _stages_field(_("target lifecycle stages"))

    class Meta:
        model = Campaign
        fields = list(CAMPAIGN_CONFIG_FIELDS)

    def clean(self):
        cleaned = super().clean()
        # a launched campaign's window is not on the form (it was approved): its budget must
        # still hold it
        window = {
            name: cleaned.get(name) if name in self.fields else getattr(self.instance, name)
            for name in ("starts_on", "ends_on")
        }
        problems = window_problems(**window) or budget_window_problems(
            budget=cleaned.get("budget"), **window
        )
        for problem in problems:
            self.add_error("ends_on" if "ends_on" in self.fields else "budget", problem)
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
        for field, problems in bound_problems(cleaned, TASK_BOUNDS).items():
            if field not in self.errors:
                self.add_error(field, problems)
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
