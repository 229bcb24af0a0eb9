from django.urls import path

from . import views

app_name = "members"
urlpatterns = [
    path("", views.member_list_view, name="list"),
    path("feeds/", views.feed_list_view, name="feeds"),
    path("feeds/<int:pk>/", views.feed_detail_view, name="feed-detail"),
    path("schemes/<int:pk>/simulate/", views.scheme_simulate_view, name="scheme-simulate"),
    path("overrides/<int:pk>/decide/", views.tier_override_decide_view, name="override-decide"),
    path("<str:member_no>/", views.member_detail_view, name="detail"),
    path("<str:member_no>/override/", views.tier_override_request_view, name="override-request"),
]
