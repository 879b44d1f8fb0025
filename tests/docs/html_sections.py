"""Reading a built page: the ``<code>`` texts under each heading id."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

HEADINGS = frozenset({"h1", "h2", "h3", "h4"})


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {"": []}
        self._current = ""
        self._code: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ident = dict(attrs).get("id")
        if tag in HEADINGS and ident:
            self._current = ident
            self.sections.setdefault(ident, [])
        elif tag == "code":
            self._code = []

    def handle_data(self, data: str) -> None:
        if self._code is not None:
            self._code.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "code" and self._code is not None:
            self.sections[self._current].append("".join(self._code).strip())
            self._code = None


def code_by_section(page: Path) -> dict[str, list[str]]:
    """Heading id -> the text of each ``<code>`` between it and the next heading."""
    parser = _Sections()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.sections
