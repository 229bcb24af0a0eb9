from django.urls import path
from rest_framework.routers import SimpleRouter

import portal.converters  # noqa: F401 - registers the <member_no:…> path converter

from . import views

router = SimpleRouter()
router.register("benefits", views.BenefitViewSet, basename="api-benefit")
router.register("entitlements", views.TierEntitlementViewSet, basename="api-entitlement")
router.register("budgets", views.BudgetViewSet, basename="api-budget")

urlpatterns = [
    path(
        "members/<member_no:member_no>/grants/<int:grant_id>/redeem/",
        views.GrantRedeemView.as_view(),
        name="api-grant-redeem",
    ),
    *router.urls,
]
