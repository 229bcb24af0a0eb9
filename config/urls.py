"""Root URLconf: every app's pages and APIs, mounted in one place."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import benefits.urls
import members.urls
import operations.urls
import portal.converters  # noqa: F401 - registers the <member_no:…> path converter
from operations.api import MemberCentreView
from portal.accounts import PortalAuthenticationForm

#: /members/…: the members pages, then the customer 360 page (operations) and the benefit
#: feedback on a customer (benefits), all in the `members` namespace
members_pages = (
    [
        *members.urls.urlpatterns,
        *operations.urls.customer_patterns,
        *benefits.urls.customer_patterns,
    ],
    "members",
)

urlpatterns = [
    path("", include("operations.urls")),
    path("", include("portal.urls")),
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=PortalAuthenticationForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("members/", include(members_pages)),
    path("admin/", admin.site.urls),
    path("api/v1/", include("portal.api.urls")),
    path("api/v1/", include("benefits.api.urls")),
    path("api/v1/", include("members.api.urls")),
    path(
        "api/v1/members/<member_no:member_no>/",
        MemberCentreView.as_view(),
        name="api-member-centre",
    ),
    path("api/v1/", include("campaigns.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.DEBUG:
    urlpatterns += staticfiles_urlpatterns()
