"""The repository's own documentation stands on its own: every relative link of the README and
of docs/ resolves in a fresh clone, and nothing points outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench/README.md"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(document):
    targets = [target for target in LINK.findall(document.read_text()) if "://" not in target]
    broken = []
    for target in targets:
        resolved = (document.parent / target).resolve()
        if not resolved.exists() or ROOT not in resolved.parents and resolved != ROOT:
            broken.append(target)

    assert targets or document.name != "README.md"
    assert broken == []


def test_nothing_in_the_repository_points_at_files_outside_it():
    outside = re.compile(r"\.\./shared|shared/(API|DESIGN|STYLE)\.md")
    offending = [
        str(path.relative_to(ROOT))
        for pattern in ("*.md", "*.py", "*.html", "*.toml")
        for path in ROOT.rglob(pattern)
        if not {".venv", ".git", "node_modules"} & set(path.parts)
        and path.name != "test_docs.py"
        and outside.search(path.read_text(errors="replace"))
    ]

    assert offending == []
