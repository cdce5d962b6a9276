"""What the browser tests share: scripts/run's whole stack on free ports, Chromium, logging in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "demo-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes], seconds: float = 240) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"scripts/run exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not come up")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """scripts/run on free ports; yields the app's and the fake carrier's URLs, and its state."""
    state = tmp_path_factory.mktemp("state")
    ports = {"PORT": free_port(), "GOTV_REDIS_PORT": free_port(), "GOTV_CARRIER_PORT": free_port()}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TWILIO_", "GOTV_", "REDIS_", "DATABASE_", "PUBLIC_"))
    }
    env.update({key: str(value) for key, value in ports.items()}, GOTV_STATE_DIR=str(state))
    log = (state / "run.log").open("wb")
    process = subprocess.Popen(
        [str(ROOT / "scripts/run")],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    urls = {
        "app": f"http://127.0.0.1:{ports['PORT']}",
        "carrier": f"http://127.0.0.1:{ports['GOTV_CARRIER_PORT']}",
        "state": str(state),  # the SQLite database and the fake carrier's auth token
    }
    try:
        wait_until_up(urls["app"] + "/login", process)
        wait_until_up(urls["carrier"] + "/", process)
        yield urls
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def log_in(page: Page, app_url: str, email: str) -> None:
    page.goto(app_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def reload_until(page: Page, text: str, seconds: float = 15) -> None:
    """Reload until `text` shows: the texts travel through the worker and the carrier."""
    deadline = time.monotonic() + seconds
    while text not in page.content():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} never appeared on {page.url}")
        time.sleep(0.3)
        page.reload()
