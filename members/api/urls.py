from django.urls import path

from . import views

urlpatterns = [
    path("members/", views.MemberListView.as_view(), name="api-member-list"),
    path("members/<str:member_no>/", views.MemberCentreView.as_view(), name="api-member-centre"),
]
