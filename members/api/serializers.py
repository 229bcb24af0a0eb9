"""Serializers of the members API. Personal data leaves only masked."""

from rest_framework import serializers

from ..models import Member


class MemberTierSerializer(serializers.Serializer):
    """A member's tier: null before the first grading."""

    code = serializers.CharField()
    name = serializers.CharField()
    rank = serializers.IntegerField()


class MemberListSerializer(serializers.ModelSerializer):
    """A member as staff clients list them: phone and ID number masked."""

    phone = serializers.CharField(source="masked_phone", read_only=True)
    id_number = serializers.CharField(source="masked_id_number", read_only=True)
    branch = serializers.CharField(
        source="branch.code", default=None, read_only=True, allow_null=True
    )
    account_manager = serializers.CharField(
        source="account_manager.username", default=None, read_only=True, allow_null=True
    )
    tier = MemberTierSerializer(read_only=True, allow_null=True)
    lifecycle_stage = serializers.CharField(read_only=True)

    class Meta:
        model = Member
        fields = [
            "member_no",
            "name",
            "phone",
            "id_number",
            "branch",
            "account_manager",
            "status",
            "tier",
            "lifecycle_stage",
            "registered_at",
            "last_active_on",
        ]
