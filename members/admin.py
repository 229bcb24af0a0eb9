"""Admin for members and feeds. Personal data is never shown unmasked here."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from portal.admin_base import MatrixModelAdmin

from .models import FeedBatch, FeedRejection, Member
from .selectors import member_scope


@admin.register(Member)
class MemberAdmin(MatrixModelAdmin):
    """Read-only: member data comes from the members feed; phone and ID shown masked."""

    view_action = "members.view_members"
    list_display = [
        "member_no",
        "name",
        "phone_masked",
        "id_number_masked",
        "branch",
        "account_manager",
        "status",
        "lifecycle_stage",
        "credit_risk",
    ]
    list_filter = ["status", "lifecycle_stage", "credit_risk", "branch"]
    search_fields = ["member_no", "name", "=id_number"]
    list_select_related = ["branch", "account_manager"]
    exclude = ["phone", "id_number"]
    readonly_fields = [
        "member_no",
        "name",
        "phone_masked",
        "id_number_masked",
        "birth_date",
        "registered_at",
        "branch",
        "account_manager",
        "status",
        "channels",
        "credit_risk",
        "lifecycle_stage",
        "last_active_on",
        "points_balance",
    ]
    show_full_result_count = False

    def get_queryset(self, request):
        return member_scope(user=request.user).select_related("branch", "account_manager")

    @admin.display(description=_("phone"))
    def phone_masked(self, member: Member) -> str:
        return member.masked_phone

    @admin.display(description=_("ID number"))
    def id_number_masked(self, member: Member) -> str:
        return member.masked_id_number


@admin.register(FeedBatch)
class FeedBatchAdmin(MatrixModelAdmin):
    view_action = "members.view_feeds"
    list_display = [
        "id",
        "kind",
        "file_name",
        "status",
        "received",
        "accepted",
        "duplicates",
        "rejected",
        "first_date",
        "last_date",
        "imported_by",
        "started_at",
    ]
    list_filter = ["kind", "status"]
    search_fields = ["file_name", "checksum"]
    readonly_fields = [f.name for f in FeedBatch._meta.fields]


@admin.register(FeedRejection)
class FeedRejectionAdmin(MatrixModelAdmin):
    view_action = "members.view_feeds"
    list_display = ["batch", "line_no", "field", "reason", "row_masked"]
    list_filter = ["batch__kind", "field"]
    list_select_related = ["batch"]
    exclude = ["raw"]
    readonly_fields = ["batch", "line_no", "field", "reason", "row_masked"]

    @admin.display(description=_("row as received"))
    def row_masked(self, rejection: FeedRejection) -> str:
        return rejection.masked_raw()
