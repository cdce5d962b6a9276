"""The front door, in a real browser: scripts/run's whole stack driven through Debian's Chromium.

These tests start `scripts/run` itself (gunicorn, the RQ worker, the embedded Redis, the fake
carrier, SQLite) on free ports in a temporary state directory, then use the product as people do.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser_support import browser, log_in, page, reload_until, stack

pytestmark = pytest.mark.browser
__all__ = ["browser", "page", "stack"]  # fixtures, shared with the other browser tests


def test_a_volunteer_texts_a_voter_and_sees_the_reply(page: Page, stack: dict[str, str]) -> None:
    log_in(page, stack["app"], "volunteer@demo.test")
    page.get_by_role("link", name="Send texts").first.click()
    page.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()
    preview = page.locator("#message-body")
    expect(preview).to_contain_text("it's Val, a volunteer with Vote Together")
    first_name = re.match(r"Hi (\w+),", preview.inner_text())
    assert first_name, preview.inner_text()

    expect(page.locator("#send-button[data-ready]")).to_be_attached()  # read first
    page.keyboard.press("Enter")  # the Send button has focus: one key press, one text
    expect(preview).not_to_contain_text(f"Hi {first_name.group(1)},")

    voter = page.context.new_page()
    voter.goto(stack["carrier"] + "/")
    reload_until(voter, f"Hi {first_name.group(1)},")
    thread = voter.locator("section").filter(has_text=f"Hi {first_name.group(1)},")
    thread.locator("input[name=body]").fill("Yes! Where do I vote?")
    thread.get_by_role("button", name="Send reply").click()

    page.get_by_role("link", name="Your conversations").click()
    reload_until(page, "needs reply")
    page.get_by_role("link", name=re.compile(first_name.group(1))).click()
    expect(page.locator(".thread")).to_contain_text("Yes! Where do I vote?")

    page.get_by_label("Reply").fill("At the library on Main St, 7am to 8pm.")
    page.get_by_role("button", name="Send reply").click()
    reload_until(voter, "At the library on Main St")


def test_an_organizer_builds_and_launches_a_campaign(
    page: Page, stack: dict[str, str], tmp_path: Path
) -> None:
    voters = tmp_path / "voters.csv"
    voters.write_text(
        "FirstName,LastName,CellPhone,ZIP5\nAna,Peña,(602) 555-0211,85001\nBad,Row,12,85001\n",
        encoding="utf-8",
    )
    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_label("Campaign name").fill("Early vote push")
    page.get_by_role("button", name="Create campaign").click()

    page.get_by_label(re.compile("CSV")).set_input_files(voters)
    page.get_by_role("button", name="Upload list").click()
    page.get_by_role("button", name="Start import").click()
    expect(page.locator("#import-summary")).to_contain_text("1 contact loaded of 2 rows read")
    page.get_by_role("link", name="Back to the campaign").click()

    page.get_by_label("Initial message").fill("Hi {first_name}, early voting starts Monday!")
    page.get_by_role("button", name="Save script").click()
    expect(page.get_by_role("status")).to_contain_text("Script saved")
    page.get_by_label("Status").select_option("active")
    page.get_by_role("button", name="Update status").click()
    expect(page.locator("h1")).to_contain_text("active")
    expect(page.locator("#count-contacts")).to_have_text("1")


def test_an_organizer_checks_a_lists_columns_and_watches_it_load(
    page: Page, stack: dict[str, str], tmp_path: Path
) -> None:
    voters = tmp_path / "van-export.csv"
    voters.write_text(
        "VANID,FirstName,LastName,CellPhone,ZIP5,Goes By\r\n"
        "1,Robert,Núñez,(602) 555-0212,85001,Beto\r\n"
        "2,Bad,Row,555-12,85001,Bad\r\n"
        "3,Sam,Lee,602.555.0213,85001,Sammy\r\n",
        encoding="utf-8",
    )
    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_label("Campaign name").fill("Import check")
    page.get_by_role("button", name="Create campaign").click()
    page.get_by_label(re.compile("CSV")).set_input_files(voters)
    page.get_by_role("button", name="Upload list").click()

    expect(page.locator("h1")).to_contain_text("van-export.csv")
    expect(page.get_by_label("Cell phone")).to_have_value("CellPhone")
    expect(page.get_by_label("First name")).to_have_value("FirstName")
    expect(page.locator("#preview")).to_contain_text("Núñez")
    page.get_by_label("First name").select_option("Goes By")
    page.get_by_role("button", name="Start import").click()

    bar = page.get_by_role("progressbar")
    expect(bar).to_be_visible()
    summary = page.locator("#import-summary")  # import.js reloads the page when it is done
    expect(summary).to_contain_text("2 contacts loaded of 3 rows read", timeout=30_000)
    expect(bar).to_have_attribute("value", "100")
    expect(page.locator("[data-count=rejected]")).to_have_text("1")
    expect(page.get_by_role("button", name="Cancel import")).to_have_count(0)
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Download the rows not loaded")).click()
    rejected = Path(download.value.path()).read_text(encoding="utf-8")
    assert "555-12" in rejected and "Bad" in rejected, rejected
    assert "Beto" not in rejected

    page.get_by_role("link", name="Back to the campaign").click()
    expect(page.locator("#count-contacts")).to_have_text("2")
    expect(page.locator("#recent-imports")).to_contain_text("van-export.csv")
    expect(page.locator("#script")).to_be_visible()


def test_a_newcomer_joins_through_an_invitation_link_and_starts_texting(
    page: Page, stack: dict[str, str], browser: Browser
) -> None:
    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_role("link", name="Team").click()
    page.get_by_label("Start them on campaign").select_option(label="GOTV weekend")
    page.get_by_role("button", name="Create invitation link").click()
    link = page.get_by_role("textbox", name="Invitation link").input_value()
    page.get_by_role("button", name="Copy link").click()
    expect(page.locator("#copy-status")).not_to_be_empty()

    context = browser.new_context()
    newcomer = context.new_page()
    newcomer.goto(link)
    expect(newcomer.get_by_label("Your name")).to_be_focused()
    newcomer.keyboard.type("Nadia Newcomer")
    newcomer.get_by_label("Email").fill("nadia@example.test")
    newcomer.get_by_label(re.compile(r"^Password \(")).fill("a long enough password")
    newcomer.get_by_label("Password again").fill("a long enough password")
    newcomer.get_by_role("button", name="Join and start").click()

    # On the campaign's send page, signed in (the demo volunteer's batch may hold every voter
    # by now; tests/test_browser_texting.py goes on from here to text).
    expect(newcomer.get_by_role("heading", name="GOTV weekend")).to_be_visible()
    expect(newcomer.get_by_role("button", name=re.compile(r"Get \d+ contacts"))).to_be_visible()
    expect(newcomer.get_by_role("button", name="Log out Nadia Newcomer")).to_be_visible()
    context.close()


def test_a_reply_to_one_organizations_number_reaches_that_organization_alone(
    browser: Browser, stack: dict[str, str]
) -> None:
    """scripts/run's second organization texts from a number of its own Twilio account: the
    voter answers that number, and only that organization's volunteer hears it."""
    nia = browser.new_context().new_page()
    log_in(nia, stack["app"], "nia@demo.test")
    nia.get_by_role("link", name="Send texts").first.click()
    nia.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()
    preview = nia.locator("#message-body")
    expect(preview).to_contain_text("it's Nia with Neighbors United")
    first_name = re.match(r"Hi (\w+),", preview.inner_text())
    assert first_name, preview.inner_text()
    expect(nia.locator("#send-button[data-ready]")).to_be_attached()  # read first
    nia.keyboard.press("Enter")
    expect(preview).not_to_contain_text(f"Hi {first_name.group(1)}, it's Nia")

    voter = browser.new_context().new_page()
    voter.goto(stack["carrier"] + "/")
    reload_until(voter, f"Hi {first_name.group(1)}, it's Nia")
    thread = voter.locator("section").filter(has_text=f"Hi {first_name.group(1)}, it's Nia")
    thread.locator("select[name=to]").select_option("+15005550010")
    thread.locator("input[name=body]").fill("Where is my polling place, Neighbors?")
    thread.get_by_role("button", name="Send reply").click()

    nia.get_by_role("link", name="Your conversations").click()
    reload_until(nia, "needs reply")
    nia.get_by_role("link", name=re.compile(first_name.group(1))).click()
    expect(nia.locator(".thread")).to_contain_text("Where is my polling place, Neighbors?")

    other = browser.new_context().new_page()
    log_in(other, stack["app"], "organizer@demo.test")
    other.goto(stack["app"] + "/review?text=Neighbors")
    expect(other.locator("main")).not_to_contain_text("Where is my polling place, Neighbors?")


def test_every_main_page_loads_without_a_console_error_or_a_failed_request(
    page: Page, stack: dict[str, str]
) -> None:
    """What the browser's console would show a person: a script error, a blocked resource, a
    missing icon or stylesheet."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    visited = []
    for email, paths in (
        ("organizer@demo.test", ["/", "/campaigns", "/campaigns/1", "/campaigns/1/dashboard"]),
        ("organizer@demo.test", ["/campaigns/archived", "/review", "/opt-outs", "/team"]),
        ("organizer@demo.test", ["/settings", "/settings/senders", "/settings/twilio"]),
        ("organizer@demo.test", ["/settings/tags", "/audit", "/operations", "/account"]),
        ("volunteer@demo.test", ["/texting", "/texting/1/send", "/texting/1/conversations"]),
    ):
        page.context.clear_cookies()
        log_in(page, stack["app"], email)
        for path in paths:
            page.goto(stack["app"] + path)
            page.wait_for_load_state("networkidle")
            visited.append((path, page.title()))

    assert problems == [], visited
