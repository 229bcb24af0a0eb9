"""The operations pages: the workbench, the dashboard, job runs; the customer 360 page
(`customer_patterns`, mounted by `config.urls` among the members pages)."""

from django.urls import path

import portal.converters  # noqa: F401 - registers the <member_no:…> path converter

from . import campaign_views, customer_views, views
from .dashboard import views as dashboard_views

urlpatterns = [
    path("", views.home, name="home"),
    path("dashboard/", dashboard_views.dashboard_view, name="dashboard"),
    path("dashboard/<slug:chart>.csv", dashboard_views.dashboard_csv_view, name="dashboard-csv"),
    path(
        "campaigns/<str:code>/effect/",
        campaign_views.campaign_effect_view,
        name="campaign-effect",
    ),
    path(
        "campaigns/<str:code>/effect.csv",
        campaign_views.campaign_effect_csv_view,
        name="campaign-effect-csv",
    ),
    path("jobs/", views.jobrun_list_view, name="jobruns"),
    path("jobs/table/", views.jobrun_table_view, name="jobruns-table"),
    path("jobs/run/", views.jobrun_run_date_view, name="jobruns-run-date"),
    path("jobs/<int:pk>/rerun/", views.jobrun_rerun_view, name="jobrun-rerun"),
]

#: the customer 360 page and its reveal, under /members/<member_no>/ in the members namespace
customer_patterns = [
    path("<member_no:member_no>/", customer_views.member_detail_view, name="detail"),
    path("<member_no:member_no>/reveal/", customer_views.member_reveal_view, name="reveal"),
]
