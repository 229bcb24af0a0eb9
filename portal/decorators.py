"""View guards: every portal view names the action of the permission matrix it needs."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from .permissions import roles_allowed, user_can


def action_required(action: str):
    """Anonymous users go to the login page; users without the action get 403."""
    roles_allowed(action)  # fail at import time for an action missing from the matrix

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not user_can(request.user, action):
                raise PermissionDenied(action)
            return view(request, *args, **kwargs)

        wrapper.action_required = action
        return wrapper

    return decorator
