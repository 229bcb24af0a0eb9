"""Deciding a request in tests the way every door does: through the approval engine."""

from __future__ import annotations

from portal.approvals import approval_decide, approval_pending_for


def decide_pending(obj, kind: str, *, approve: bool, actor, comment: str = ""):
    """Decide the pending request of `kind` about `obj` with `approval_decide`; returns
    `obj` as it is afterwards."""
    approval_decide(
        approval=approval_pending_for(kind=kind, obj=obj),
        approve=approve,
        actor=actor,
        comment=comment,
    )
    obj.refresh_from_db()
    return obj
