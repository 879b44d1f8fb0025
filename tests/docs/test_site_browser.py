"""The built site in headless Chromium (Debian's ``chromium``, driven by Playwright): its
search finds a page, and every link of the tutorial resolves, anchors included.

The site is served from the build directory on 127.0.0.1 by the standard library's HTTP
server, as any static host would serve it (search needs HTTP: it loads its index with a
web worker).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urlsplit

import pytest

import headless

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
TIMEOUT_MS = 15_000
TUTORIAL = ("tutorial/", "tutorial/aws/")

pytestmark = headless.MARKS


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=site))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with headless.launched(ARGS) as browser:
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        context.set_default_timeout(TIMEOUT_MS)
        yield context.new_page()
        context.close()


def test_search_finds_the_page_that_answers(base_url: str, page: Any) -> None:
    page.goto(base_url)
    box = page.locator("input.md-search__input")
    box.click()
    box.fill("keep environments warm")
    # Results arrive as the search worker finds them: wait for this one, not the first.
    link = page.locator("a.md-search-result__link", has_text="Keep environments warm").first
    link.wait_for(state="visible")
    link.click()
    page.wait_for_url(f"{base_url}how-to/warm-ups/*")
    heading = page.locator("article h1").first.inner_text()
    assert heading.rstrip("¶").strip() == "Keep environments warm"


def test_every_tutorial_link_resolves(base_url: str, page: Any) -> None:
    checked: set[str] = set()
    for path in TUTORIAL:
        response = page.goto(base_url + path)
        assert response is not None and response.status == 200, path
        hrefs = page.eval_on_selector_all("article a[href]", "links => links.map(a => a.href)")
        internal = [h for h in hrefs if h.startswith(base_url)]
        assert len(internal) >= 5, f"{path}: only {internal}"
        for href in internal:
            if href in checked:
                continue
            checked.add(href)
            url, fragment = urldefrag(href)
            response = page.goto(url)
            assert response is not None and response.status == 200, f"{path} -> {href}"
            assert page.title() != "404", href
            if fragment:
                found = page.locator(f"[id='{fragment}']").count()
                assert found == 1, f"{path} -> {href}: no element with id {fragment!r}"
    pages = {urlsplit(h).path for h in checked}
    assert "/reference/cli/" in pages and "/reference/configuration/" in pages
