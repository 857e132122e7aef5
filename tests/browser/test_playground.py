"""The playground page in headless chromium: start a call, hear and read the agent, end the call,
then read its saved transcript and load its recording."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from infra.local.stack import LocalStack
from tests.support.fake_openai import ANSWER, QUESTION, FakeOpenAIServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.livekit, pytest.mark.e2e]


def _page_state(page: Page) -> str:
    return page.evaluate(
        """() => JSON.stringify({
            status: document.getElementById('status').textContent,
            agent: document.getElementById('agent-joined').textContent,
            connection: document.getElementById('connection').textContent,
            error: document.getElementById('error').textContent,
            lines: [...document.querySelectorAll('#transcript .line')].map(l => l.textContent),
        })"""
    )


@pytest.mark.timeout(240)
def test_playground_call_reaches_the_agent_and_ends(
    stack: LocalStack, fake_openai: FakeOpenAIServer, browser: Browser, run_dir: Path
) -> None:
    api_key = stack.api_keys[0][0]
    page = browser.contexts[0].new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    page.on("pageerror", lambda exc: console.append(f"pageerror: {exc}"))

    def context() -> str:
        logs = "\n".join(console[-30:])
        worker = stack.log_path("worker").read_text(errors="replace")[-3000:]
        return f"page: {_page_state(page)}\nconsole:\n{logs}\nworker:\n{worker}\nrun dir: {run_dir}"

    page.goto(stack.playground_url)
    page.fill("#api-key", api_key)
    page.select_option("#agent-type", "single_agent")
    page.check("#greeting")
    page.check("#record")
    page.click("#start")

    try:
        page.wait_for_selector("#agent-joined[data-joined=true]", timeout=60_000)
        # The caller's question (the fake microphone) comes back transcribed on the page,
        # and the agent's spoken answer to it arrives as the agent's transcript line.
        page.locator("#transcript .line.caller", has_text=QUESTION).first.wait_for(timeout=60_000)
        page.locator("#transcript .line.agent", has_text=ANSWER).first.wait_for(timeout=60_000)
    except Exception as exc:
        page.screenshot(path=str(run_dir / "playground-failed.png"), full_page=True)
        raise AssertionError(
            f"the call did not reach the agent's answer: {exc}\n{context()}"
        ) from exc

    assert page.text_content("#status") == "active", context()
    assert page.text_content("#mic") == "on", context()
    agent_tracks = page.evaluate(
        "() => { const s = document.getElementById('agent-audio').srcObject;"
        " return s ? s.getAudioTracks().filter(t => t.readyState === 'live').length : 0; }"
    )
    assert agent_tracks == 1, f"the agent's audio is not attached to the page\n{context()}"
    page.screenshot(path=str(run_dir / "playground-call.png"), full_page=True)

    session_id = page.text_content("#session-id")
    page.click("#end")
    page.wait_for_selector("#status[data-status=ended]", timeout=30_000)
    assert page.text_content("#connection") == "disconnected", context()
    assert page.is_enabled("#start"), context()
    page.screenshot(path=str(run_dir / "playground-ended.png"), full_page=True)

    # After the call: the saved transcript of both sides, and the recording, playable.
    try:
        page.locator("#saved-transcript .line.caller", has_text=QUESTION).first.wait_for(
            timeout=60_000
        )
        page.locator("#saved-transcript .line.agent", has_text=ANSWER).first.wait_for(
            timeout=10_000
        )
        page.wait_for_selector("#recording:not([hidden])", timeout=10_000)
    except Exception as exc:
        page.screenshot(path=str(run_dir / "playground-report-failed.png"), full_page=True)
        raise AssertionError(f"no report after the call: {exc}\n{context()}") from exc
    recording = page.evaluate(
        """() => new Promise((resolve) => {
            const a = document.getElementById('recording');
            const done = () => resolve({duration: a.duration, error: a.error && a.error.code});
            if (a.readyState >= 1) return done();
            a.addEventListener('loadedmetadata', done, {once: true});
            a.addEventListener('error', done, {once: true});
            a.load();
        })"""
    )
    assert recording["error"] is None, f"the browser could not load the recording: {recording}"
    assert recording["duration"] > 1, recording
    page.screenshot(path=str(run_dir / "playground-report.png"), full_page=True)

    resp = httpx.get(
        f"{stack.api_url}/voice/realtime/session/{session_id}",
        headers={"x-api-key": api_key},
        timeout=10,
    )
    assert resp.status_code == 200
    assert resp.json()["status"] == "ended"
    assert fake_openai.fake.of("/v1/chat/completions"), "the agent never asked the LLM"

    check_call_console(page, stack, api_key, session_id, run_dir)


def _deliveries(stack: LocalStack, api_key: str, session_id: str) -> list[dict]:
    resp = httpx.get(
        f"{stack.api_url}/voice/realtime/session/{session_id}/webhooks",
        headers={"x-api-key": api_key},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["deliveries"]


def check_call_console(
    page: Page, stack: LocalStack, api_key: str, session_id: str, run_dir: Path
) -> None:
    """The console lists the call and shows its transcript, turn chart, recording and webhooks."""
    # The receiver refuses the first delivery: wait until the retry got through.
    deadline = time.monotonic() + 60
    while not any(d["outcome"] == "delivered" for d in _deliveries(stack, api_key, session_id)):
        assert time.monotonic() < deadline, _deliveries(stack, api_key, session_id)
        time.sleep(0.5)

    page.goto(stack.console_url)
    # The key the playground stored is reused; Load lists the key's sessions.
    assert page.input_value("#api-key") == api_key
    row = page.locator(f"#sessions tr[data-session-id='{session_id}']")
    row.wait_for(timeout=15_000)
    cells = row.locator("td").all_text_contents()
    assert cells[1] == "ended", cells
    assert cells[2].endswith(" s"), f"no duration in the list: {cells}"
    assert cells[3], f"no end reason in the list: {cells}"

    row.click()
    try:
        page.wait_for_selector("#detail[data-loaded=true]", timeout=15_000)
    except Exception as exc:
        page.screenshot(path=str(run_dir / "console-failed.png"), full_page=True)
        raise AssertionError(f"the call's detail did not load: {exc}") from exc
    page.screenshot(path=str(run_dir / "console-call.png"), full_page=True)

    assert page.locator("#detail-transcript .line.caller", has_text=QUESTION).count() >= 1
    assert page.locator("#detail-transcript .line.agent", has_text=ANSWER).count() >= 1
    turns = page.locator("#turns tbody tr.turn").count()
    assert turns >= 1
    assert page.locator("#chart g.turn").count() == turns
    assert page.locator("#chart g.turn rect[data-stage=end_to_end_ms]").count() >= 1
    assert page.is_visible("#recording")
    duration = page.evaluate(
        """() => new Promise((resolve) => {
            const a = document.getElementById('recording');
            if (a.readyState >= 1) return resolve(a.duration);
            a.addEventListener('loadedmetadata', () => resolve(a.duration), {once: true});
            a.addEventListener('error', () => resolve(-1), {once: true});
        })"""
    )
    assert duration > 1, duration
    outcomes = [
        (cells[1], cells[3])
        for cells in (
            r.locator("td").all_text_contents()
            for r in page.locator("#deliveries tr.delivery").all()
        )
    ]
    assert ("session.started", "retrying") in outcomes, outcomes
    assert ("session.started", "delivered") in outcomes, outcomes


@pytest.mark.timeout(120)
def test_playground_shows_the_api_error_for_a_wrong_key(
    stack: LocalStack, browser: Browser
) -> None:
    page = browser.contexts[0].new_page()
    page.goto(stack.playground_url)
    page.fill("#api-key", "vk_not_a_real_key")
    page.click("#start")

    page.wait_for_selector("#error:not([hidden])", timeout=15_000)
    error = page.text_content("#error") or ""
    assert error.startswith("unauthorized: "), error
    assert page.text_content("#status") == "idle"
    assert page.is_enabled("#start")
    assert page.is_disabled("#end")


@pytest.mark.timeout(180)
def test_playground_calls_the_agent_version_picked(stack: LocalStack, browser: Browser) -> None:
    api_key = stack.api_keys[0][0]
    headers = {"x-api-key": api_key}
    base = f"{stack.api_url}/voice/realtime"
    agent_id = httpx.post(f"{base}/agents", headers=headers, json={"name": "picker"}, timeout=10)
    agent_id = agent_id.json()["agent_id"]
    for note in ("first", "second"):
        body = {"config": {"agent": {"type": "single_agent"}}, "note": note}
        r = httpx.post(f"{base}/agents/{agent_id}/versions", headers=headers, json=body, timeout=10)
        assert r.status_code == 201, r.text

    page = browser.contexts[0].new_page()
    page.goto(stack.playground_url)
    page.fill("#api-key", api_key)
    page.click("#load-agents")
    page.wait_for_selector(f"#agent-id option[value={agent_id}]", state="attached", timeout=15_000)
    page.select_option("#agent-id", agent_id)
    page.wait_for_selector("#agent-version option[value='2']", state="attached", timeout=15_000)
    assert page.text_content("#agent-version option[value='2']") == "v2: second"
    assert page.is_disabled("#agent-type")
    page.select_option("#agent-version", "2")
    page.click("#start")
    page.wait_for_function(
        "id => document.getElementById('agent-version-shown').textContent === `${id} v2`",
        arg=agent_id,
        timeout=30_000,
    )
    session_id = page.text_content("#session-id")
    page.click("#end")
    page.wait_for_selector("#status[data-status=ended]", timeout=30_000)
    shown = httpx.get(f"{base}/session/{session_id}", headers=headers, timeout=10).json()
    assert (shown["agent_id"], shown["agent_version"]) == (agent_id, 2)
