from rest_framework import serializers

from ..models import BenefitGrant


class GrantSerializer(serializers.ModelSerializer):
    benefit = serializers.CharField(source="benefit.code")
    member_no = serializers.CharField(source="member.member_no")
    expires_at = serializers.DateField(source="expires_on")

    class Meta:
        model = BenefitGrant
        fields = ["id", "member_no", "benefit", "source", "status", "expires_at", "redeemed_at"]
