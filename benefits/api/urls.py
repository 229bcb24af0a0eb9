from django.urls import path

from . import views

urlpatterns = [
    path(
        "members/<str:member_no>/grants/<int:grant_id>/redeem/",
        views.GrantRedeemView.as_view(),
        name="api-grant-redeem",
    ),
]
