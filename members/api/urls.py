from django.urls import path

from . import views

urlpatterns = [
    path("members/", views.MemberListView.as_view(), name="api-member-list"),
]
