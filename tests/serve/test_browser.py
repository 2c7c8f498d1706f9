"""The search page in a real browser: Debian's chromium driven by Playwright against a live uvicorn server.

Needs chromium (`.ci/setup-browser.sh` installs it and the playwright package); skipped only when chromium is
absent. The screenshot goes to $UMR_ARTIFACTS (CI uploads it) or the test's tmp folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from serve_support import COLOURS, SeaScorer, ToyEmbedder, png_bytes, running_server

from umr.index import load_index
from umr.serve.app import ServeSettings, create_app

CHROMIUM = os.environ.get("UMR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (run .ci/setup-browser.sh)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(tmp_path: Path, toy_index_dir: Path):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # chromium is there, so the suite is meant to run this test: say what is missing
        pytest.fail("chromium is installed but the playwright package is not: run .ci/setup-browser.sh")
    app = create_app(load_index(toy_index_dir), ToyEmbedder(), ServeSettings(index_dir=toy_index_dir),
                     reranker=SeaScorer())
    with running_server(app) as base, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1100, "height": 800})
        try:
            tab = context.new_page()
            tab.set_default_timeout(20_000)
            tab.requests = []  # type: ignore[attr-defined]
            tab.on("request", lambda r: tab.requests.append(r.url))  # type: ignore[attr-defined]
            tab.goto(base + "/")
            tab.wait_for_selector("body[data-ready='1']")
            yield tab, base
        finally:
            context.close()


def run_search(tab) -> list[str]:
    before = int(tab.evaluate("document.body.dataset.searches || 0"))
    tab.click("#search-btn")
    # selectors, not wait_for_function: the page's CSP (no eval) applies to Playwright's injected polling too
    tab.wait_for_selector(f"body[data-searches='{before + 1}']")
    return tab.eval_on_selector_all("#results .result", "els => els.map(e => e.dataset.id)")


def test_search_page_text_and_image_queries(page, tmp_path: Path) -> None:
    tab, base = page
    assert "7 items" in tab.inner_text("#status")
    options = tab.eval_on_selector_all("#instruction option", "os => os.map(o => o.value)")
    assert "Retrieve the best match." in options and tab.is_visible("#rerank-label")

    # 1. typed text query
    tab.fill("#query-text", "sleeping cat")
    tab.select_option("#instruction", "Retrieve the best match.")
    found = run_search(tab)
    assert found[0] == "t-cat" and len(found) == 7
    assert tab.inner_text("#latency").startswith("7 results in")
    first = tab.locator("#results .result").first
    assert first.locator(".badge").inner_text().lower() == "text" and first.locator(".score").inner_text()

    # 2. uploaded image, images only: the same-coloured image first, with a loaded thumbnail
    red = tmp_path / "red-query.jpg"
    red.write_bytes(png_bytes(tuple(c - 10 for c in COLOURS["i-red"]), (60, 45), "JPEG"))
    tab.fill("#query-text", "")
    tab.set_input_files("#image-input", str(red))
    tab.wait_for_selector("#preview-wrap:not([hidden])")
    tab.select_option("#modality", "image")
    found = run_search(tab)
    assert found[0] == "i-red" and sorted(found) == ["i-blue", "i-green", "i-red"]
    thumb = tab.locator("#results .result").first.locator("img.thumb")
    assert thumb.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    assert [b.lower() for b in tab.locator("#results .badge").all_inner_texts()] == ["image"] * 3

    # 3. an image dropped on the drop zone replaces it
    tab.click("#clear-image")
    tab.select_option("#modality", "")  # any modality again: the screenshot shows every kind of badge
    blue = png_bytes(COLOURS["i-blue"], (30, 30))
    tab.evaluate("""bytes => {
        const file = new File([new Uint8Array(bytes)], 'blue.png', {type: 'image/png'});
        const dt = new DataTransfer(); dt.items.add(file);
        document.getElementById('drop-zone').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
    }""", list(blue))
    tab.wait_for_selector("#preview-wrap:not([hidden])")
    assert run_search(tab)[0] == "i-blue"

    out = Path(os.environ.get("UMR_ARTIFACTS", tmp_path)) / "serve-search-page.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(out), full_page=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000

    # everything came from this server (no CDN)
    assert all(u.startswith(base) or u.startswith("data:") for u in tab.requests), tab.requests


def test_search_page_shows_errors(page) -> None:
    tab, _ = page
    tab.click("#search-btn")  # nothing typed, no image
    assert tab.is_visible("#error") and "Type a query" in tab.inner_text("#error")
    tab.fill("#query-text", "x" * 9000)  # over the server's text limit: the server's message is shown
    tab.click("#search-btn")
    tab.wait_for_selector("#error:has-text('over the limit')")
    assert tab.locator("#results .result").count() == 0
