from datetime import timedelta

from django import forms
from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from portal.clock import today_in_shanghai

from .choices import FeedKind, LifecycleStage, MemberStatus
from .models import Segment, Tier
from .services import FeedFileError, tier_override_latest_expiry
from .worklists import WORK_LISTS


class MemberFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        widget=forms.TextInput(attrs={"placeholder": _("Member no., name or full ID number")}),
    )
    stage = forms.ChoiceField(
        label=_("Lifecycle stage"),
        required=False,
        choices=[("", _("All stages")), *LifecycleStage.choices],
    )
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("All statuses")), *MemberStatus.choices]
    )
    branch = forms.CharField(label=_("Branch code"), required=False)
    tier = forms.ChoiceField(label=_("Tier"), required=False, choices=[])
    segment = forms.ChoiceField(label=_("Segment"), required=False, choices=[])
    worklist = forms.ChoiceField(
        label=_("Work list"),
        required=False,
        choices=[
            ("", _("All customers")),
            *((name, work_list.label) for name, work_list in WORK_LISTS.items()),
        ],
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].choices = [("", _("All tiers"))] + [
            (tier.code, tier.name)
            for tier in Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")
        ]
        self.fields["segment"].choices = [("", _("All segments"))] + list(
            Segment.objects.order_by("code").values_list("code", "name")
        )


class TierOverrideForm(forms.Form):
    tier = forms.ModelChoiceField(label=_("Tier"), queryset=None)
    reason = forms.CharField(label=_("Reason"), max_length=255)
    expires_on = forms.DateField(
        label=_("Expires on"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = Tier.objects.filter(scheme__status="ACTIVE").order_by("rank")
        today = today_in_shanghai()
        latest = tier_override_latest_expiry(today)
        self.fields["expires_on"].widget.attrs.update(
            min=(today + timedelta(days=1)).isoformat(), max=latest.isoformat()
        )
        self.fields["expires_on"].help_text = _("At the latest %(date)s.") % {
            "date": latest.isoformat()
        }


class DecisionForm(forms.Form):
    approve = forms.BooleanField(required=False)
    comment = forms.CharField(label=_("Comment"), max_length=255, required=False)


class RevealForm(forms.Form):
    """Why the full phone and ID number are needed: kept in the audit trail."""

    reason = forms.CharField(
        label=_("Reason"),
        max_length=255,
        error_messages={"required": _("Give a reason to reveal the personal data.")},
        widget=forms.TextInput(attrs={"placeholder": _("Why do you need the full values?")}),
    )


class OptOutForm(forms.Form):
    """The customer opts out of (1) or back into (0) personalised marketing."""

    opted_out = forms.TypedChoiceField(
        choices=[("1", _("Opted out")), ("0", _("Opted in"))], coerce=lambda value: value == "1"
    )
    reason = forms.CharField(label=_("How the customer asked"), max_length=255, required=False)


class FollowUpNoteForm(forms.Form):
    text = forms.CharField(
        label=_("Note"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )
    due_on = forms.DateField(
        label=_("Follow up by"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )


#: the largest feed file the portal takes (settings.FEED_UPLOAD_MAX_BYTES); larger files go
#: through `manage.py import_feed`
FEED_UPLOAD_MAX_BYTES_DEFAULT = 200 * 1024 * 1024


def feed_upload_max_bytes() -> int:
    return getattr(settings, "FEED_UPLOAD_MAX_BYTES", FEED_UPLOAD_MAX_BYTES_DEFAULT)


def feed_upload_too_large_text() -> str:
    return _(
        "The file is larger than %(max)s, the most the portal takes. Split it, or import it "
        "with the import_feed command."
    ) % {"max": filesizeformat(feed_upload_max_bytes())}


class FeedUploadForm(forms.Form):
    """A feed file uploaded on the feeds page; the import itself is `feed_import`, the same
    service as the command's, so a file is judged by one set of rules."""

    kind = forms.ChoiceField(label=_("Kind"), choices=FeedKind.choices)
    file = forms.FileField(
        label=_("File (CSV, UTF-8, header row)"),
        error_messages={
            "required": _("Choose the feed file to upload."),
            "empty": _("The file is empty: a feed file starts with its header row."),
        },
    )

    def clean_file(self):
        file = self.cleaned_data["file"]
        if file.size > feed_upload_max_bytes():
            raise forms.ValidationError(feed_upload_too_large_text(), code="too_large")
        return file


#: what a page says for each `FeedFileError.code`, in the reader's language
_FEED_FILE_ERRORS = {
    "empty": _("The file is empty; its first line must be the header %(expected)s."),
    "wrong_header": _(
        "The header is wrong: the first line is %(found)s but must be exactly %(expected)s."
    ),
    "not_utf8": _("The file is not UTF-8 text. Export it again as UTF-8 and upload it again."),
    "not_csv": _("The file is not readable CSV. Check it and upload it again."),
}


def feed_file_error_text(error: FeedFileError) -> str:
    """A file-level refusal of the feed import, said to the person who uploaded the file."""
    template = _FEED_FILE_ERRORS.get(error.code)
    if template is None:
        return _("The file cannot be imported: %(error)s") % {"error": error.message}
    try:
        return str(template) % error.details
    except (KeyError, TypeError, ValueError):
        return str(template)
