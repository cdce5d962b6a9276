"""Message review in a real browser: an organizer hands a volunteer's conversations to another.

Uses test_browser.py's stack (scripts/run on free ports, its own demo data) and helpers.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests import test_browser
from tests.test_browser import log_in

pytestmark = pytest.mark.browser

# test_browser's fixtures, shared: this module gets its own scripts/run stack (fresh demo data).
stack = test_browser.stack
browser = test_browser.browser
page = test_browser.page

TEXTS = 3


def send_texts(page: Page, app_url: str, count: int) -> None:
    """As the demo volunteer, send `count` initial texts, one Enter each."""
    log_in(page, app_url, "volunteer@demo.test")
    page.get_by_role("link", name="Send texts").first.click()
    page.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()
    preview = page.locator("#message-body")
    expect(preview).to_contain_text("Hi ")
    for _ in range(count):
        greeting = re.match(r"Hi \w+,", preview.inner_text())
        assert greeting, preview.inner_text()
        expect(page.locator("#send-button[data-ready]")).to_be_attached()  # read first
        page.keyboard.press("Enter")
        expect(preview).not_to_contain_text(greeting.group(0))
    page.get_by_role("button", name=re.compile("Log out")).click()


def conversations(page: Page) -> list[str]:
    return page.locator(".conversations li").all_inner_texts()


def test_an_organizer_reassigns_every_conversation_matching_a_search(
    page: Page, stack: dict[str, str]
) -> None:
    send_texts(page, stack["app"], TEXTS)

    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Review").click()
    page.get_by_label("Volunteer", exact=True).select_option(label="Val")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".conversations li")).to_have_count(TEXTS)

    page.get_by_label("Every conversation matching this search, on all pages").check()
    page.get_by_label("Reassign to").select_option(label="Sam")
    page.get_by_role("button", name="Reassign", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text(f"Reassigned {TEXTS} conversations.")
    expect(page.locator(".conversations")).to_contain_text("No conversations match.")
    page.get_by_label("Volunteer", exact=True).select_option(label="Sam")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".conversations li")).to_have_count(TEXTS)
    assert all("Sam" in text for text in conversations(page)), conversations(page)

    # And back, ticking the page's boxes at once (review.js).
    page.get_by_label("Select all on this page").check()
    page.get_by_label("Reassign to").select_option(label="Val")
    page.get_by_role("button", name="Reassign", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(f"Reassigned {TEXTS} conversations.")

    page.get_by_role("link", name="Audit log").click()
    expect(page.locator(".audit-log li").first).to_contain_text("conversations reassigned")
    expect(page.locator(".audit-log li").nth(1)).to_contain_text("texter:")
