"""Root URLconf."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import audit_views, dashboard_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("dashboard/", dashboard_views.dashboard_view, name="dashboard"),
    path("dashboard/<slug:chart>.csv", dashboard_views.dashboard_csv_view, name="dashboard-csv"),
    path("jobs/", views.jobrun_list_view, name="jobruns"),
    path("audit/", audit_views.audit_list_view, name="audit"),
    path("jobs/<int:pk>/rerun/", views.jobrun_rerun_view, name="jobrun-rerun"),
    path("approvals/", views.approval_list_view, name="approvals"),
    path("approvals/<int:pk>/", views.approval_detail_view, name="approval-detail"),
    path("approvals/<int:pk>/decide/", views.approval_decide_view, name="approval-decide"),
    path("members/", include("members.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("benefits.api.urls")),
    path("api/v1/", include("members.api.urls")),
    path("api/v1/", include("campaigns.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()
