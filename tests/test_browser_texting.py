"""The volunteer's texting, in a phone-sized browser: joining by an invitation link, a batch,
twenty texts with the Enter key, a reply arriving live, answered with a canned response, a tag,
and an opt-out.

With GOTV_SCREENSHOTS=1 the test also writes docs/screenshots/send-loop-phone.png and
docs/screenshots/inbox-phone.png (the images the README shows).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import ROOT, browser, log_in, stack

pytestmark = pytest.mark.browser
__all__ = ["browser", "stack"]  # fixtures, shared with the other browser tests

PHONE = {"width": 375, "height": 812}
ACCOUNT_SID = "ACfa6eca66e4000000000000000000000a"  # scripts/run's fake carrier account
SCREENSHOTS = ROOT / "docs" / "screenshots"
EXTRA_VOTERS = 25  # New Yorkers: open whenever the test runs (the demo campaign is 0-24 h)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def add_new_yorkers(state: str) -> None:
    """Add voters to the demo campaign whom no state rule holds back at any hour."""
    now = datetime.now(UTC).isoformat(sep=" ")
    with sqlite3.connect(Path(state) / "gotv.sqlite3") as database:
        campaign_id = database.execute("SELECT min(id) FROM campaign").fetchone()[0]
        database.executemany(
            "INSERT INTO contact (campaign_id, cell, first_name, last_name, zip, state,"
            " rule_states, time_zones, custom_fields, status, needs_reply, opt_out_suggested,"
            " unread, updated_at) VALUES (?, ?, ?, 'Voter', '10001', 'NY', 'NY',"
            " 'America/New_York', '{}', 'new', 0, 0, 0, ?)",
            [
                (campaign_id, f"+1212555{400 + n:04d}", f"Newyorker{n}", now)
                for n in range(EXTRA_VOTERS)
            ],
        )


def carrier_messages(stack: dict[str, str]) -> list[dict[str, str]]:
    """Every message the fake carrier was asked to send, from its Messages API."""
    token = (Path(stack["state"]) / "fake_auth_token").read_text().strip()
    request = urllib.request.Request(
        f"{stack['carrier']}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json?PageSize=200",
        headers={
            "Authorization": "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{token}".encode()).decode()
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        messages: list[dict[str, str]] = json.load(response)["messages"]
    return messages


def voter_replies(stack: dict[str, str], cell: str, body: str) -> None:
    """The voter at `cell` texts back, through the fake carrier."""
    request = urllib.request.Request(
        stack["carrier"] + "/_carrier/reply",
        data=json.dumps({"from": cell, "body": body}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201


def screenshot(page: Page, name: str) -> None:
    if os.environ.get("GOTV_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / name))


def assert_fits_a_phone(page: Page) -> None:
    """No horizontal scrolling, and every button and button-link at least 44 px tall."""
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    small = page.evaluate(
        """[...document.querySelectorAll('main button, main a.button')]
             .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
             .map(e => e.textContent.trim())"""
    )
    assert small == []


def invitation_link(browser: Browser, stack: dict[str, str]) -> str:
    """An organizer's link for a new volunteer, starting them on the demo campaign."""
    context = browser.new_context()
    organizer = context.new_page()
    log_in(organizer, stack["app"], "organizer@demo.test")
    organizer.get_by_role("link", name="Team").click()
    organizer.get_by_label("Start them on campaign").select_option(label="GOTV weekend")
    organizer.get_by_role("button", name="Create invitation link").click()
    link = organizer.get_by_role("textbox", name="Invitation link").input_value()
    context.close()
    return link


def test_a_newcomer_joins_texts_twenty_voters_with_enter_and_answers_a_reply_live(
    phone: Page, browser: Browser, stack: dict[str, str]
) -> None:
    add_new_yorkers(stack["state"])
    page = phone
    page.goto(invitation_link(browser, stack))
    page.get_by_label("Your name").fill("Nadia Newcomer")
    page.get_by_label("Email").fill("nadia@example.test")
    page.get_by_label(re.compile(r"^Password \(")).fill("a long enough password")
    page.get_by_label("Password again").fill("a long enough password")
    page.get_by_role("button", name="Join and start").click()
    page.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()
    expect(page.get_by_role("status").first).to_contain_text("new contacts are yours")
    send = page.get_by_role("button", name="Send", exact=True)
    expect(send).to_be_focused()
    assert_fits_a_phone(page)
    screenshot(page, "send-loop-phone.png")

    status = page.locator("#send-status")
    for sent in range(1, 21):
        page.keyboard.press("Enter")  # the keyboard only: Send keeps the focus
        expect(status).to_contain_text(re.compile(rf"\b{sent} texts? sent this session"))

    texted: list[dict[str, str]] = []
    for _ in range(60):
        texted = carrier_messages(stack)
        if len(texted) >= 20:
            break
        page.wait_for_timeout(250)
    recipients = [message["to"] for message in texted]
    assert len(recipients) == 20 and len(set(recipients)) == 20, recipients

    page.get_by_role("link", name=re.compile("Your conversations")).click()
    voter = recipients[0]
    first_text = next(m["body"] for m in texted if m["to"] == voter)
    name = re.match(r"Hi (\w+),", first_text)
    assert name, first_text
    first_name = re.compile(rf"\b{re.escape(name.group(1))}\b")
    conversation = page.locator("#conversation-list li", has_text=first_name)
    expect(conversation).to_have_count(1)

    voter_replies(stack, voter, "Yes! Where do I vote?")  # no reload from here on
    expect(conversation).to_contain_text("1 unread")
    expect(conversation).to_contain_text("needs reply")
    expect(page.locator("#live-announcer")).to_contain_text(f"New reply from {name.group(1)}")
    assert_fits_a_phone(page)
    screenshot(page, "inbox-phone.png")

    conversation.get_by_role("link").click()
    expect(page.locator(".thread")).to_contain_text("Yes! Where do I vote?")
    page.get_by_role("button", name="Where to vote").click()  # the demo's canned response
    expect(page.get_by_label("Reply")).to_have_value(
        f"{name.group(1)}, you can look up your polling place at vote.org. Polls are open 7am "
        "to 8pm."
    )
    page.get_by_role("button", name="Send reply").click()
    expect(page.locator(".thread")).to_contain_text("look up your polling place")
    page.get_by_label("Add a tag").fill("Needs a ride")
    page.get_by_role("button", name="Add tag").click()
    expect(page.locator("#tag-list")).to_contain_text("Needs a ride")

    voter_replies(stack, voter, "Thanks. Please don't text me again though")
    expect(page.locator(".thread")).to_contain_text("don't text me again")  # live, in place
    assert_fits_a_phone(page)
    page.get_by_role("button", name="Opt out this person").click()
    expect(page.get_by_text("This person opted out.")).to_be_visible()
