"""Translation catalogues: zh_Hans is complete, the committed .mo files match their .po
files, and the bilingual choice labels ("Dormant 沉睡") render one part per language."""

from __future__ import annotations

import ast
import gettext
import io
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from members.choices import LifecycleStage

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
VENDOR_DIR = Path(settings.BASE_DIR) / "locale_vendor"
ZH_PO = LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po"
UNFOLD_PO = VENDOR_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po"
PO_FILES = sorted([*LOCALE_DIR.glob("*/LC_MESSAGES/django.po"), UNFOLD_PO])

#: A few of the django-unfold msgids translated by hand in locale_vendor/ (unfold ships no
#: zh-Hans strings, and Django's catalogues lack these).
UNFOLD_MSGIDS = ("Select record", "Apply Filters", "Filters", "Run", "Type to search", "Cancel")


@dataclass
class Entry:
    msgid: str | None = None
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    line: int = 0


def parse_po(path: Path) -> tuple[list[Entry], list[str]]:
    """The live entries of a .po file, and the msgids of its obsolete ("#~") entries."""
    entries: list[Entry] = []
    obsolete: list[str] = []
    current = Entry()
    target: tuple[str, int] | None = None

    def flush() -> None:
        nonlocal current, target
        if current.msgid is not None:
            entries.append(current)
        current, target = Entry(), None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#~"):
            rest = line[2:].strip()
            if rest.startswith("msgid "):
                obsolete.append(ast.literal_eval(rest[len("msgid ") :]))
            continue
        if line.startswith("#"):
            if target is not None:  # a comment after msgstr starts the next entry
                flush()
            if line.startswith("#,"):
                current.flags.update(f.strip() for f in line[2:].split(",") if f.strip())
            continue
        if line.startswith('"'):
            assert target is not None, f"{path}:{number}: string outside an entry"
            value = ast.literal_eval(line)
        else:
            keyword, _, literal = line.partition(" ")
            value = ast.literal_eval(literal)
            if keyword in ("msgctxt", "msgid") and target is not None and target[0] == "msgstr":
                flush()
            if keyword.startswith("msgstr"):
                index = int(keyword[len("msgstr[") : -1]) if "[" in keyword else 0
                target = ("msgstr", index)
                current.msgstr[index] = ""
            elif keyword in ("msgctxt", "msgid", "msgid_plural"):
                target = (keyword, 0)
                setattr(current, keyword, "")
                if keyword == "msgid":
                    current.line = number
            else:
                raise AssertionError(f"{path}:{number}: unexpected keyword {keyword!r}")
        if target[0] == "msgstr":
            current.msgstr[target[1]] += value
        else:
            setattr(current, target[0], getattr(current, target[0]) + value)
    flush()
    return entries, obsolete


def expected_catalogue(path: Path) -> dict:
    """What msgfmt compiles from a .po file, keyed as gettext.GNUTranslations keys it."""
    catalogue: dict = {}
    for entry in parse_po(path)[0]:
        if "fuzzy" in entry.flags and entry.msgid:
            continue
        if not all(entry.msgstr.values()):
            continue  # untranslated (the en catalogue leaves English msgids empty)
        key = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural is None:
            catalogue[key] = entry.msgstr[0]
        else:
            catalogue.update({(key, i): text for i, text in entry.msgstr.items()})
    return catalogue


def mo_catalogue(data: bytes) -> dict:
    return dict(gettext.GNUTranslations(io.BytesIO(data))._catalog)


def without_pot_date(catalogue: dict) -> dict:
    """msgfmt leaves the POT-Creation-Date line of the header out of the .mo file."""
    header = "".join(
        line
        for line in catalogue.get("", "").splitlines(keepends=True)
        if not line.startswith("POT-Creation-Date:")
    )
    return {**catalogue, "": header}


def test_there_are_catalogues():
    assert ZH_PO in PO_FILES
    assert (LOCALE_DIR / "en" / "LC_MESSAGES" / "django.po") in PO_FILES


def test_zh_hans_every_entry_translated_and_none_fuzzy():
    entries, _ = parse_po(ZH_PO)
    messages = [e for e in entries if e.msgid]
    assert len(messages) > 300
    untranslated = [f"line {e.line}: {e.msgid!r}" for e in messages if not all(e.msgstr.values())]
    fuzzy = [f"line {e.line}: {e.msgid!r}" for e in entries if "fuzzy" in e.flags]
    assert not untranslated, "zh_Hans entries without a translation:\n" + "\n".join(untranslated)
    assert not fuzzy, "fuzzy zh_Hans entries (check them, then drop the flag):\n" + "\n".join(fuzzy)
    msgids = [(e.msgctxt, e.msgid) for e in entries]
    assert len(msgids) == len(set(msgids)), "duplicate msgids in the zh_Hans catalogue"


def test_zh_hans_unfold_catalogue_is_live_and_complete():
    """The admin theme's strings live in locale_vendor/, which makemessages never rewrites."""
    entries, obsolete = parse_po(UNFOLD_PO)
    assert all(all(e.msgstr.values()) for e in entries if e.msgid), "untranslated unfold entry"
    live = {e.msgid: e.msgstr.get(0) for e in entries}
    lost = [m for m in UNFOLD_MSGIDS if not live.get(m)]
    assert not lost, (
        f"django-unfold entries missing or obsolete in {UNFOLD_PO}: {lost} "
        f"(obsolete entries: {len(obsolete)})."
    )
    with translation.override("zh-hans"):
        for msgid in UNFOLD_MSGIDS:
            assert translation.gettext(msgid) == live[msgid]


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: f"{p.parents[2].name}-{p.parents[1].name}")
def test_committed_mo_matches_po(po: Path):
    mo = po.with_suffix(".mo")
    assert mo.exists(), f"{mo} is missing: run `manage.py compilemessages --ignore=.venv`"
    stale = f"{mo} is stale: run `manage.py compilemessages --ignore=.venv`"
    assert mo_catalogue(mo.read_bytes()) == without_pot_date(expected_catalogue(po)), stale


@pytest.mark.parametrize("po", PO_FILES, ids=lambda p: f"{p.parents[2].name}-{p.parents[1].name}")
def test_committed_mo_equals_msgfmt_output(po: Path, tmp_path: Path):
    """Compile the .po again as compilemessages does; the bytes must match, or (another
    gettext version may lay the file out differently) at least the catalogues must."""
    msgfmt = shutil.which("msgfmt")
    if msgfmt is None:
        pytest.skip("msgfmt (GNU gettext) is not installed")
    fresh = tmp_path / "django.mo"
    subprocess.run(  # noqa: S603 - fixed argument list, no shell
        [msgfmt, "--check-format", "-o", str(fresh), str(po)], check=True, capture_output=True
    )
    committed = po.with_suffix(".mo").read_bytes()
    if fresh.read_bytes() != committed:
        assert mo_catalogue(committed) == mo_catalogue(fresh.read_bytes()), (
            f"{po.with_suffix('.mo')} is stale: run `manage.py compilemessages --ignore=.venv`"
        )


def test_bilingual_choice_label_renders_one_part_per_language():
    with translation.override("zh-hans"):
        assert str(LifecycleStage.DORMANT.label) == "沉睡"
        assert translation.gettext("Customers") == "客户"
    with translation.override("en"):
        assert str(LifecycleStage.DORMANT.label) == "Dormant"
        assert translation.gettext("Customers") == "Customers"
