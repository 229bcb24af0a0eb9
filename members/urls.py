"""The members pages under /members/ (namespace `members`, mounted by `config.urls` together
with the customer 360 page of `operations` and the benefit feedback of `benefits`)."""

from django.urls import path

import portal.converters  # noqa: F401 - registers the <member_no:…> path converter

from . import note_views, views

urlpatterns = [
    path("", views.member_list_view, name="list"),
    path("feeds/", views.feed_list_view, name="feeds"),
    path("feeds/upload/", views.feed_upload_view, name="feed-upload"),
    path("feeds/<int:pk>/", views.feed_detail_view, name="feed-detail"),
    path("feeds/<int:pk>/progress/", views.feed_progress_view, name="feed-progress"),
    path("feeds/<int:pk>/rejected.csv", views.feed_rejections_export_view, name="feed-rejections"),
    path("schemes/<int:pk>/simulate/", views.scheme_simulate_view, name="scheme-simulate"),
    path("overrides/<int:pk>/decide/", views.tier_override_decide_view, name="override-decide"),
    path(
        "overrides/<int:pk>/withdraw/",
        views.tier_override_withdraw_view,
        name="override-withdraw",
    ),
    path("export.csv", views.member_export_view, name="export"),
    path("segments/<int:pk>/export.csv", views.segment_export_view, name="segment-export"),
    path(
        "<member_no:member_no>/override/", views.tier_override_request_view, name="override-request"
    ),
    path("<member_no:member_no>/notes/", note_views.note_add_view, name="note-add"),
    path("<member_no:member_no>/notes/<int:pk>/done/", note_views.note_done_view, name="note-done"),
    path("<member_no:member_no>/opt-out/", views.member_opt_out_view, name="opt-out"),
]
