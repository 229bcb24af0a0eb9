"""What a service refuses with reaches people (a form's field error, the API's `detail`, an
admin message): every such message is written for translation. The test reads the source of
the domain apps and fails on an English sentence handed, untranslated, to a domain error or
to a list of problems (`problems.append("…")`, `return ["…"]`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from django.conf import settings

from portal.errors import DomainError

APPS = ("portal", "members", "benefits", "campaigns", "operations")
#: Written for other developers or for a terminal, never for the people of the bank.
NOT_FOR_PEOPLE = ("migrations", "management", "tests")
GETTEXT = {"_", "gettext", "gettext_lazy", "ngettext", "pgettext", "pgettext_lazy"}
SENTENCE = re.compile(r"^[A-Z][a-z']+(?: \S+){2,}")


def _domain_errors() -> set[str]:
    names, todo = set(), [DomainError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return names


def _text(node: ast.AST) -> str | None:
    """The text of a string literal or an f-string (placeholders as {}), else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
        return _text(node.left)
    return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def untranslated_messages() -> list[str]:
    import django.apps

    for config in django.apps.apps.get_app_configs():  # every DomainError subclass imported
        __import__(config.name)
    errors = _domain_errors()
    found = []
    root = Path(settings.BASE_DIR)
    for app in APPS:
        for path in sorted((root / app).rglob("*.py")):
            if set(path.relative_to(root).parts) & set(NOT_FOR_PEOPLE):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                candidates: list[ast.AST] = []
                if isinstance(node, ast.Call) and _call_name(node) in errors:
                    candidates = node.args[:1] + [
                        k.value for k in node.keywords if k.arg in ("message", "detail")
                    ]
                elif isinstance(node, ast.Call) and _call_name(node) in ("append", "extend"):
                    owner = node.func.value if isinstance(node.func, ast.Attribute) else None
                    if isinstance(owner, ast.Name) and owner.id == "problems":
                        candidates = node.args[:1]
                elif isinstance(node, ast.Return) and isinstance(node.value, ast.List):
                    candidates = list(node.value.elts)
                for candidate in candidates:
                    text = _text(candidate)
                    if text and SENTENCE.match(text):
                        where = f"{path.relative_to(root)}:{candidate.lineno}"
                        found.append(f"{where}: {text[:70]!r}")
    return found


def test_every_refusal_a_person_reads_is_translatable():
    found = untranslated_messages()

    assert not found, "English sentences outside gettext:\n" + "\n".join(found)
