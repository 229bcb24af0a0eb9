from django.urls import path
from rest_framework.routers import SimpleRouter

from . import config_views, views

router = SimpleRouter()
router.register("campaigns", config_views.CampaignViewSet, basename="api-campaign")
router.register("tasks", config_views.TaskViewSet, basename="api-task")
router.register("segments", config_views.SegmentViewSet, basename="api-segment")

urlpatterns = [
    path("events/", views.EventBatchView.as_view(), name="api-events"),
    *router.urls,
]
