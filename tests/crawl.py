"""What a person sees on a page, and the pages a role can reach: shared by the language crawl
(`tests/operations/test_ui_language.py`) and the rendering tests.

Visible text is the text of the page outside <script>, <style> and <template>, plus the
attributes a browser shows (title, placeholder, aria-label, alt, the value of a button).
Icons drawn by an icon font from their names are no text either; the language crawl also
leaves out the read-only values of an admin change form (the object's stored data). Elements marked
`translate="no"` (HTML's own "do not translate this" — codes shown in grey
beside a name, member numbers, language names in the language selector, data values in the
audit trail) are left out: they are identifiers or data, the same in every language.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

#: Elements whose text no one reads as page text; a key cap (<kbd>esc</kbd>) is labelled as
#: the key is, in every language.
HIDDEN = {"script", "style", "template", "noscript", "kbd"}
#: Elements without an end tag.
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


class _VisibleText(HTMLParser):
    def __init__(self, *, without_stored_values: bool = False) -> None:
        super().__init__(convert_charrefs=True)
        self.without_stored_values = without_stored_values
        self.parts: list[str] = []
        self.links: list[str] = []
        self._stack: list[tuple[str, bool]] = []  # (tag, hides its text)

    @property
    def _hidden(self) -> bool:
        return any(hides for _, hides in self._stack)

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        hides = (
            tag in HIDDEN
            or values.get("translate") == "no"
            or "hidden" in values
            # an icon font draws its glyph from the icon's name (unfold's "close", "search")
            or "material-symbols" in (values.get("class") or "")
            # a change form's read-only values are the object's stored data (a tier's code
            # and English name on its scheme's page, a segment's rules)
            or (self.without_stored_values and "readonly" in (values.get("class") or "").split())
        )
        if tag == "a" and values.get("href"):
            self.links.append(values["href"])
        if not (self._hidden or hides):
            for name in SHOWN_ATTRIBUTES:
                if values.get(name):
                    self.parts.append(values[name])
            button = tag == "input" and values.get("type") in ("submit", "button")
            if button and values.get("value"):
                self.parts.append(values["value"])
        if tag not in VOID:
            self._stack.append((tag, hides))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID and self._stack and self._stack[-1][0] == tag:
            self._stack.pop()

    def handle_endtag(self, tag):
        for index in range(len(self._stack) - 1, -1, -1):
            if self._stack[index][0] == tag:
                del self._stack[index:]
                return

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.parts.append(data.strip())


def visible_text(html: str, *, without_stored_values: bool = False) -> list[str]:
    """The pieces of text a person sees on the page, in document order (without an admin
    form's read-only values, the object's stored data, if asked)."""
    parser = _VisibleText(without_stored_values=without_stored_values)
    parser.feed(html)
    return parser.parts


def page_links(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    return parser.links


#: A word of English: letters, perhaps joined by an apostrophe or a hyphen.
ENGLISH_WORD = re.compile(r"(?<![\w.@/-])[A-Za-z]+(?:['’-][A-Za-z]+)*(?![\w@/])")
#: An identifier: a token holding a digit or an underscore (C202612-ACT, M000123, B01S1,
#: LOUNGE_PASS), an e-mail address, an address or a file name.
IDENTIFIER = re.compile(r"\S*[\d_]\S*|\S+@\S+|\S*://\S*|\S*/\S*|\S+\.(?:csv|png|json)\b")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3000-\u303f\uff01-\uff5e]+")


def english_words(text: str, allowed: set[str]) -> list[str]:
    """The English words of `text` outside identifiers and the allowed words."""
    text = IDENTIFIER.sub(" ", text)
    return [word for word in ENGLISH_WORD.findall(text) if word not in allowed]


def chinese_runs(text: str) -> list[str]:
    return CJK.findall(text)


#: Path segments that vary per object: numbers, member numbers, dates, hex tokens.
_VARIABLE_SEGMENT = re.compile(r"^(?:\d+|[A-Z]{1,3}\d{4,}|\d{4}-\d{2}-\d{2}|[0-9a-f-]{16,})$")


def path_pattern(path: str) -> str:
    """/members/M000123/ → /members/*/ so that a crawl visits one page of each kind."""
    segments = path.split("/")
    return "/".join("*" if _VARIABLE_SEGMENT.match(segment) else segment for segment in segments)


def internal_path(href: str) -> str | None:
    """The path of a link to a page of this site, or None (other sites, anchors, js:)."""
    parts = urlsplit(href)
    if parts.scheme not in ("", "http", "https") or parts.netloc not in ("", "testserver"):
        return None
    if not parts.path.startswith("/"):
        return None
    return parts.path
