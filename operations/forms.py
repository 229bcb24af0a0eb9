"""Forms of the operations pages."""

from datetime import timedelta

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from portal.clock import today_in_shanghai

__all__ = ["NIGHTLY_RUN_DAYS_BACK", "NightlyRunForm"]

#: How far back an administrator may run a night from the job runs page (about 13 months:
#: the tier basis and the yearly periods; older dates are a data repair for run_nightly).
NIGHTLY_RUN_DAYS_BACK = 400


class NightlyRunForm(forms.Form):
    """The business date an administrator runs the nightly chain for: today in Shanghai or
    earlier (the feeds refuse rows dated after today), at most NIGHTLY_RUN_DAYS_BACK back."""

    business_date = forms.DateField(
        label=gettext_lazy("Business date"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        today = today_in_shanghai()
        self.fields["business_date"].widget.attrs.update(
            max=today.isoformat(), min=(today - timedelta(days=NIGHTLY_RUN_DAYS_BACK)).isoformat()
        )

    def clean_business_date(self):
        day = self.cleaned_data["business_date"]
        today = today_in_shanghai()
        if day > today:
            raise forms.ValidationError(
                _(
                    "%(date)s is in the future: the nightly chain runs for today (%(today)s) "
                    "or an earlier business date."
                )
                % {"date": day.isoformat(), "today": today.isoformat()},
                code="future",
            )
        earliest = today - timedelta(days=NIGHTLY_RUN_DAYS_BACK)
        if day < earliest:
            raise forms.ValidationError(
                _(
                    "%(date)s is more than %(days)s days ago: choose %(earliest)s or later, or "
                    "run `python manage.py run_nightly --date %(date)s` on the server."
                )
                % {
                    "date": day.isoformat(),
                    "days": NIGHTLY_RUN_DAYS_BACK,
                    "earliest": earliest.isoformat(),
                },
                code="too_old",
            )
        return day
