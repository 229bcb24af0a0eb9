"""What an account manager writes on the customer page: follow-up notes (add one, close one;
htmx-friendly: a request from htmx gets the notes fragment back, a plain form post is
redirected to the customer page)."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from portal.decorators import action_required
from portal.errors import DomainError, form_add_domain_error
from portal.paging import capped

from .forms import FollowUpNoteForm
from .models import FollowUpNote
from .selectors import member_get, member_notes
from .services import followup_note_add, followup_note_done


def _respond(request, member, form=None):
    if request.htmx:
        return render(
            request,
            "members/_notes.html",
            {
                "member": member,
                "notes": capped("notes", member_notes(member=member)),
                "note_form": form or FollowUpNoteForm(),
                "can_write_notes": True,
            },
        )
    return redirect("members:detail", member_no=member.member_no)


@require_POST
@action_required("members.write_notes")
def note_add_view(request, member_no: str):
    member = member_get(user=request.user, member_no=member_no)
    form = FollowUpNoteForm(request.POST)
    if form.is_valid():
        try:
            followup_note_add(
                member=member,
                actor=request.user,
                text=form.cleaned_data["text"],
                due_on=form.cleaned_data["due_on"],
            )
        except DomainError as exc:
            form_add_domain_error(form, exc)
        else:
            messages.success(request, _("Note saved."))
            return _respond(request, member)
    for error in form.errors.values():
        messages.error(request, " ".join(error))
    return _respond(request, member, form)


@require_POST
@action_required("members.write_notes")
def note_done_view(request, member_no: str, pk: int):
    member = member_get(user=request.user, member_no=member_no)
    note = get_object_or_404(FollowUpNote, pk=pk, member=member, author=request.user)
    followup_note_done(note=note, actor=request.user)
    messages.success(request, _("Follow-up marked as done."))
    if request.POST.get("next") == "home":
        return redirect("home")
    return _respond(request, member)
