"""Serializers of the kernel's API: approval requests."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ..approvals import approval_impact
from ..models import ApprovalRequest


class ApprovalRequestSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    requested_by = serializers.CharField(source="requested_by.username", read_only=True)
    decided_by = serializers.CharField(
        source="decided_by.username", read_only=True, allow_null=True, default=None
    )
    diff = serializers.SerializerMethodField()
    impact = serializers.SerializerMethodField()

    class Meta:
        model = ApprovalRequest
        fields = [
            "id",
            "kind",
            "kind_label",
            "status",
            "status_label",
            "summary",
            "current",
            "proposal",
            "diff",
            "impact",
            "reason",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "comment",
        ]
        read_only_fields = fields

    def get_diff(self, approval: ApprovalRequest) -> list[dict]:
        return [
            {"field": name, "current": current, "proposed": proposed}
            for name, current, proposed in approval.diff()
        ]

    def get_impact(self, approval: ApprovalRequest) -> list[dict]:
        """What approving would do (pending requests only), computed now."""
        return [{"what": what, "value": value} for what, value in approval_impact(approval)]


class ApprovalDecisionSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)


class ApprovalRejectionSerializer(serializers.Serializer):
    """A rejection says why (`approval_decide`), through every API door (approvals and
    campaigns): without a `comment` it is 400 — a missing one as a field error, a blank one
    as `reason_required`."""

    comment = serializers.CharField(
        max_length=255,
        allow_blank=True,
        error_messages={"required": _("Say why the request is rejected.")},
        help_text="Why it is rejected (required, not blank).",
    )
