"""Building a campaign in a real browser: list, script with its live preview, survey, canned
responses, launch. Reuses test_browser.py's stack (scripts/run on free ports) and browser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests import test_browser as shared

pytestmark = pytest.mark.browser

# The same fixtures as test_browser.py; this module gets its own scripts/run.
stack, browser, page = shared.stack, shared.browser, shared.page


def assert_fits_a_phone(page: Page) -> None:
    """At a phone's width the page scrolls only down, never sideways."""
    page.set_viewport_size({"width": 360, "height": 740})
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px too wide for a phone"


def test_a_volunteer_uses_canned_responses_the_survey_and_tags(
    page: Page, browser: Browser, stack: dict[str, str]
) -> None:
    shared.log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_role("link", name="GOTV weekend").click()
    page.get_by_label("New question").fill("Need a ride to the polls?")
    page.get_by_label("Choices, one per line").fill("Yes\nNo")
    page.get_by_role("button", name="Add question").click()
    page.get_by_label("Canned response title").fill("Polling place")
    page.get_by_label("Canned response text").fill(
        "{first_name}, your polling place is the library."
    )
    page.get_by_role("button", name="Add canned response").click()
    expect(page.locator("#canned")).to_contain_text("Polling place")

    volunteer = browser.new_context().new_page()
    shared.log_in(volunteer, stack["app"], "volunteer@demo.test")
    volunteer.locator(".cards li").filter(has_text="GOTV weekend").get_by_role(
        "link", name="Send texts"
    ).click()
    volunteer.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()
    expect(volunteer.locator("#message-body")).to_contain_text("Hi ")
    first_name = re.match(r"Hi (\w+),", volunteer.locator("#message-body").inner_text())
    assert first_name, volunteer.content()
    expect(volunteer.locator("#send-button[data-ready]")).to_be_attached()  # read first
    volunteer.get_by_role("button", name="Send", exact=True).click()
    expect(volunteer.locator("#message-body")).not_to_contain_text(f"Hi {first_name.group(1)},")
    volunteer.get_by_role("link", name="Your conversations").click()
    volunteer.get_by_role("link", name=re.compile(first_name.group(1))).first.click()

    volunteer.get_by_role("button", name="Polling place").click()
    expect(volunteer.get_by_label("Reply")).to_have_value(
        f"{first_name.group(1)}, your polling place is the library."
    )
    volunteer.get_by_label("Yes", exact=True).check()
    volunteer.get_by_role("button", name="Save answer").click()
    expect(volunteer.locator("#tools-status")).to_have_text("Answer saved.")
    volunteer.get_by_label("Add a tag").fill("Needs a ride")
    volunteer.get_by_role("button", name="Add tag").click()
    expect(volunteer.locator("#tag-list")).to_contain_text("Needs a ride")
    volunteer.get_by_role("button", name="Remove tag Needs a ride").click()
    expect(volunteer.locator("#tag-list")).to_contain_text("No tags.")
    volunteer.reload()
    expect(volunteer.get_by_label("Yes", exact=True)).to_be_checked()
    assert_fits_a_phone(volunteer)
    volunteer.context.close()


def test_an_organizer_builds_a_campaign_with_a_survey_and_canned_responses(
    page: Page, stack: dict[str, str], tmp_path: Path
) -> None:
    voters = tmp_path / "voters.csv"
    voters.write_text(
        "FirstName,LastName,CellPhone,ZIP5\n"
        "Ana,Peña,(602) 555-0221,85001\n"
        "Ben,Ortiz,(602) 555-0222,85001\n",
        encoding="utf-8",
    )
    shared.log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_label("Campaign name").fill("Content drive")
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_label("Voter list (CSV or TSV)").set_input_files(voters)
    page.get_by_role("button", name="Upload list").click()
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#import-summary")).to_contain_text("2 contacts loaded of 2 rows read")
    page.get_by_role("link", name="Back to the campaign").click()

    script = page.get_by_label("Initial message")
    script.fill("Hi {first_name}, early voting starts Monday at {precinct}!")
    expect(page.locator("#preview-unknown")).to_contain_text("Unknown merge field: {precinct}")
    script.fill("Hi {first_name}, early voting starts Monday!")
    preview = page.locator("#preview-list")
    expect(preview).to_contain_text("Hi Ana, early voting starts Monday!")
    expect(preview).to_contain_text("Hi Ben, early voting starts Monday!")
    expect(page.locator("#preview-unknown")).to_be_hidden()
    page.get_by_role("button", name="Save script").click()
    expect(page.get_by_role("status").first).to_contain_text("Script saved")

    page.get_by_label("New question").fill("Will you vote early?")
    page.get_by_label("Choices, one per line").fill("Yes\nNo\nAlready voted")
    page.get_by_role("button", name="Add question").click()
    expect(page.locator("#survey")).to_contain_text("Already voted")

    page.get_by_label("Canned response title").fill("Where to vote")
    page.get_by_label("Canned response text").fill("{first_name}, find your site at vote.example")
    page.get_by_role("button", name="Add canned response").click()
    expect(page.locator("#canned")).to_contain_text("Where to vote")

    page.get_by_label("Status").select_option("active")
    page.get_by_role("button", name="Update status").click()
    expect(page.locator("h1")).to_contain_text("active")
    expect(page.locator("#count-contacts")).to_have_text("2")
    expect(page.locator("#survey")).to_contain_text("Will you vote early?")
    assert_fits_a_phone(page)
