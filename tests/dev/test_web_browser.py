"""The softphone and the dashboard in headless Chromium (Debian's ``chromium`` package),
driven by Playwright against a real ``warmline dev`` running the sample agent.

Screenshots go to ``test-artifacts/`` (gitignored). With ``WARMLINE_DOCS_IMG=1`` the
softphone and dashboard shots are also written to ``docs/img/`` for the README.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from web_helpers import GatedLLM, ThreadedDevServer, agent_config, own_non_loopback_ipv4

import headless

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
DOCS_IMG = ROOT / "docs" / "img"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
QUESTION = "What are your support hours?"
TIMEOUT_MS = 15_000

pytestmark = headless.MARKS
expect = headless.sync_api.expect if headless.INSTALLED else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless.launched(ARGS) as chromium:
        yield chromium


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[ThreadedDevServer]:
    server = ThreadedDevServer(agent_config(tmp_path)).start()
    yield server
    server.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def shot(page: Any, name: str, docs: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    if docs and os.environ.get("WARMLINE_DOCS_IMG"):
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / f"{name}.png"), full_page=True)


def agent_bubbles(page: Any) -> Any:
    return page.locator("#transcript .msg.agent")


def greeted(page: Any) -> None:
    expect(agent_bubbles(page).first).to_contain_text("How can I help you today?")
    expect(page.locator("#status")).to_have_text("connected")


def settled(page: Any) -> None:
    """No answer is still streaming (typing over one would be a barge-in)."""
    expect(page.locator("#transcript .msg.agent.streaming")).to_have_count(0)


def ask(page: Any, text: str) -> Any:
    """Once the agent has finished, type ``text``, press Enter; the bubble that answers."""
    settled(page)
    before = agent_bubbles(page).count()
    page.fill("#say", text)
    page.press("#say", "Enter")
    expect(page.locator("#transcript .msg.user").last).to_have_text(f"You{text}")
    expect(agent_bubbles(page)).to_have_count(before + 1)
    return agent_bubbles(page).last


def test_softphone_streams_an_faq_answer(dev: ThreadedDevServer, page: Any) -> None:
    page.goto(dev.url)
    greeted(page)
    answer = ask(page, QUESTION)
    expect(answer).to_contain_text("7 in the morning")
    expect(answer.locator(".badge.intent")).to_have_text("answer")
    expect(answer).not_to_have_class("msg agent streaming")
    expect(page.locator("#barge")).to_be_disabled()
    answer2 = ask(page, "I want to talk to a person")
    expect(answer2).to_contain_text("connecting you to a person")
    expect(page.locator("#transcript .msg.system.handoff")).to_contain_text("Handed off")
    expect(page.locator("#status")).to_have_text("handed off")
    shot(page, "softphone-faq")


def test_barge_in_stops_the_stream(tmp_path: Path, page: Any) -> None:
    llm = GatedLLM(
        first=["Spark 300 costs 45 dollars a month. ", "It gives you 300 megabits. "],
        rest=["Spark 1000 is a full gigabit. ", "Installation is free this month. "],
    )
    env = {
        "WARMLINE_LLM_PROVIDER": "openai",
        "WARMLINE_LLM_BASE_URL": llm.base_url,
        "WARMLINE_LLM_MODEL": "gated-test-model",
    }
    dev = ThreadedDevServer(agent_config(tmp_path, env)).start()
    try:
        page.goto(dev.url)
        greeted(page)
        answer = ask(page, "How much is the Spark 300 plan?")
        expect(answer).to_contain_text("45 dollars")  # streamed: the model is still going
        expect(answer).to_have_class("msg agent streaming")
        expect(page.locator("#barge")).to_be_enabled()
        page.click("#barge")
        expect(answer).to_have_class("msg agent interrupted")
        expect(answer.locator(".badge.cut")).to_have_text("interrupted")
        shown = answer.locator(".text").inner_text()
        llm.release()  # the rest of the answer now reaches the browser, and is dropped
        assert llm.finished.wait(TIMEOUT_MS / 1000)
        expect(page.locator("#transcript")).not_to_have_attribute("data-dropped", "0")
        assert answer.locator(".text").inner_text() == shown
        expect(page.locator("#transcript")).not_to_contain_text("gigabit")
        shot(page, "softphone-barge-in")
    finally:
        dev.close()
        llm.close()


def test_dashboard_shows_the_call_and_a_cold_start(
    dev: ThreadedDevServer, browser: Any, page: Any
) -> None:
    page.goto(dev.url + "dashboard")
    expect(page.locator("#status")).to_have_text("live")
    expect(page.locator("#call-list")).to_contain_text("No calls yet")
    phone = page.context.new_page()
    phone.goto(dev.url)
    greeted(phone)
    expect(ask(phone, QUESTION)).to_contain_text("7 in the morning")
    expect(ask(phone, "How much is the Spark 300 plan?")).to_contain_text("45 dollars")

    async def ping() -> list[str]:
        return dev.server.trigger_schedule("keep-warm")

    call = page.locator("#call-list .call").first
    expect(call).to_contain_text("Browser")
    expect(call.locator(".badge.cold")).to_have_text("cold start")
    expect(call.locator(".badge.live")).to_have_text("live")
    expect(call.locator("tbody tr")).to_have_count(4)  # connect, setup, two prompts
    expect(call.locator("tbody tr").nth(2)).to_contain_text("answer")
    expect(page.locator("#invocations tr.inv.cold").first).to_be_visible()
    expect(page.locator("#envs tbody tr").first).to_contain_text("agent")
    expect(page.locator("#latency-chart circle.pt.cold").first).to_be_attached()
    expect(page.locator("#coldwarm-chart rect.bar")).to_have_count(3)
    assert dev.run(ping()), "the keep-warm schedule fired"
    expect(page.locator("#invocations tr.inv.warmup").first).to_contain_text("warm-up ping")
    phone.close()
    expect(call.locator(".badge.closed")).to_have_text("ended")
    shot(page, "dashboard", docs=True)


def test_the_softphone_works_with_the_keyboard_alone(dev: ThreadedDevServer, page: Any) -> None:
    page.goto(dev.url)
    greeted(page)
    active = "document.activeElement.id || document.activeElement.textContent"
    assert page.evaluate(active) == "say"  # the message box has focus once connected
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(active) == "Dashboard"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(active) == "Skip to the message box"
    expect(page.locator(".skip")).to_be_in_viewport()  # shown while focused
    page.keyboard.press("Enter")  # the skip link lands in the message box
    page.keyboard.press("Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(active) == "say"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.type(QUESTION)
    page.keyboard.press("Enter")
    expect(agent_bubbles(page).last).to_contain_text("7 in the morning")
    for _ in range(12):  # on to the keypad: Send, Hang up, (Read aloud), then key 1
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "1":
            break
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "Key 1"
    page.keyboard.press("Enter")
    expect(page.locator("#transcript .msg.user.dtmf")).to_contain_text("Pressed 1")
    expect(agent_bubbles(page).last).to_contain_text("Billing.")
    shot(page, "softphone-keyboard")


def test_pages_fit_a_phone(dev: ThreadedDevServer, browser: Any) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(dev.url)
        greeted(page)
        expect(ask(page, QUESTION)).to_contain_text("7 in the morning")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        for selector in ("#say", "#send", "#barge", "#keys .key >> nth=11"):
            box = page.locator(selector).bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, selector
        shot(page, "softphone", docs=True)
        dash = context.new_page()
        dash.goto(dev.url + "dashboard")
        expect(dash.locator("#call-list .call").first).to_be_visible()
        assert dash.evaluate("document.documentElement.scrollWidth") <= 390
        shot(dash, "dashboard-phone")
    finally:
        context.close()


CONTROL_TOKEN = "browser-test-control-token-0123"


def test_the_dashboard_off_loopback_opens_with_the_printed_token_url(
    tmp_path: Path, page: Any
) -> None:
    # The emulator listens on this machine's own non-loopback address, so the browser is a
    # peer off loopback (its packets still never leave the machine).
    address = own_non_loopback_ipv4()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address to serve on")
    dev = ThreadedDevServer(
        agent_config(tmp_path), host=address, control_token=CONTROL_TOKEN
    ).start()
    try:
        page.goto(dev.url + "dashboard")
        expect(page.locator("#status")).to_contain_text("not allowed")
        # The softphone needs no token: it uses the WebSocket API, public as on AWS.
        phone = page.context.new_page()
        phone.goto(dev.url)
        greeted(phone)
        control_url = dev.server.control_url
        assert control_url is not None and CONTROL_TOKEN in control_url
        page.goto(control_url)
        assert page.url == dev.url + "dashboard", "the token leaves the address bar"
        expect(page.locator("#status")).to_have_text("live")
        expect(page.locator("#call-list .call").first).to_contain_text("Browser")
        cookie = next(c for c in page.context.cookies() if c["name"] == "warmline_control")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert page.evaluate("document.cookie") == "", "scripts cannot read the token"
        phone.close()
    finally:
        dev.close()


def test_the_pages_on_loopback_need_no_token_when_one_is_set(tmp_path: Path, page: Any) -> None:
    dev = ThreadedDevServer(agent_config(tmp_path), control_token=CONTROL_TOKEN).start()
    try:
        page.goto(dev.url + "dashboard")
        expect(page.locator("#status")).to_have_text("live")
        phone = page.context.new_page()
        phone.goto(dev.url)
        greeted(phone)
        expect(page.locator("#call-list .call").first).to_contain_text("Browser")
        phone.close()
    finally:
        dev.close()
