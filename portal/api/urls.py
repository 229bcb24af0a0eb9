from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("approvals", views.ApprovalRequestViewSet, basename="api-approval")

urlpatterns = router.urls
