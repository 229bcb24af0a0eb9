"""Read-only admins of what arrives and what it earned: event batches with every refused
event, member events, and task completions with the reward issued or why it was refused.
Rows about members are shown only for members the user may see."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.paginator import InfinitePaginator

from members.selectors import member_scope
from portal.admin_base import MatrixModelAdmin, money_column

from ..models import EventBatch, MemberEvent, TaskCompletion

__all__ = ["EventBatchAdmin", "MemberEventAdmin", "TaskCompletionAdmin"]


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
        money_column("amount", _("amount"), ordering="amount_fen"),
        "occurred_at",
        "channel",
        "batch",
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
        money_column("cost", _("cost"), ordering="cost_fen"),
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
