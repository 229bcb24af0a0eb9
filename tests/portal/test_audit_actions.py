"""Every action the code records in the audit trail has a label on the audit page: the
actions are read from the source (`audit_record(action=…)` calls, the transitions' and
local `action` names), so a new one without a label fails here."""

from __future__ import annotations

import ast
from pathlib import Path

from django.utils import translation

from portal.audit import AUDIT_ACTIONS, action_label

ROOT = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", "tests", "bench", "migrations", "node_modules", "var"}


def _sources() -> list[tuple[Path, ast.Module]]:
    return [
        (path, ast.parse(path.read_text(encoding="utf-8")))
        for path in ROOT.rglob("*.py")
        if not SKIPPED & set(path.relative_to(ROOT).parts)
    ]


def recorded_actions() -> set[str]:
    """The action codes written anywhere: literal (or either branch of a conditional)
    arguments of audit_record, module constants they name, and `action = "…"` assignments
    (a transition's action, a local chosen before the call)."""
    sources = _sources()
    constants: dict[str, str] = {}
    found: set[str] = set()

    def strings(node) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return strings(node.body) + strings(node.orelse)
        if isinstance(node, ast.Name) and node.id in constants:
            return [constants[node.id]]
        return []

    for _path, tree in sources:
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                        constants[target.id] = node.value.value
                    if target.id == "action":
                        found.update(strings(node.value))
    for _path, tree in sources:
        for node in ast.walk(tree):
            func = getattr(node, "func", None)
            name = getattr(func, "id", getattr(func, "attr", ""))
            if isinstance(node, ast.Call) and name == "audit_record":
                for keyword in node.keywords:
                    if keyword.arg == "action":
                        found.update(strings(keyword.value))
    return {code for code in found if "." in code}


def test_every_recorded_action_has_a_label():
    actions = recorded_actions()

    assert len(actions) > 40  # the reader found the calls
    assert sorted(actions - AUDIT_ACTIONS.keys()) == []


def test_an_action_reads_in_the_users_language():
    with translation.override("zh-hans"):
        assert action_label("grant.redeem") == "核销权益"
        assert action_label("campaign.pause.reason") == "活动暂停：原因"
    with translation.override("en"):
        assert action_label("grant.redeem") == "Benefit redeemed"
