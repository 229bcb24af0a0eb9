"""What the domains plug into the kernel, filled from their `AppConfig.ready()`.

The kernel never imports a domain app; where it must let the apps above it take part (the
kinds of approval request), it keeps a registry here that they fill, the way NetBox's
`netbox/registry.py` does.
"""

from __future__ import annotations

__all__ = ["APPROVAL_KINDS", "approval_kind_choices"]

#: approval kind code → its kind (a `portal.approvals.ApprovalKind`), registered by the
#: domain that owns the change
APPROVAL_KINDS: dict = {}


def approval_kind_choices() -> list[tuple[str, str]]:
    """The `ApprovalRequest.kind` choices: every registered kind with its label."""
    return [(code, kind.label) for code, kind in APPROVAL_KINDS.items()]
