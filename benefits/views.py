"""Benefit pages: feedback on whether a benefit suits a customer (from the customer page)."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from members.selectors import member_get
from portal.decorators import action_required

from .forms import BenefitFeedbackForm
from .services import benefit_feedback_record


@require_POST
@action_required("benefits.leave_feedback")
def benefit_feedback_view(request, member_no: str):
    """Record whether a benefit suits this customer (read by the benefit demand report)."""
    member = member_get(user=request.user, member_no=member_no)
    form = BenefitFeedbackForm(request.POST)
    if form.is_valid():
        benefit_feedback_record(
            member=member,
            benefit=form.cleaned_data["benefit"],
            useful=form.cleaned_data["useful"] == "yes",
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )
        messages.success(request, _("Feedback recorded."))
    else:
        for error in form.errors.values():
            messages.error(request, " ".join(error))
    return redirect("members:detail", member_no=member.member_no)
