"""The organizer's side in a real browser: building a branching campaign section by section,
a volunteer following a branch, a script with a bad merge field kept as typed, texting hours
edited with the states' windows, the re-texting guard, and a token with two scopes.

With GOTV_SCREENSHOTS=1 the tests also write docs/screenshots/builder.png,
builder-branches.png and dashboard.png (the images docs/organizers.md shows).
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser_support import ROOT, browser, log_in, stack
from tests.test_browser_texting import add_new_yorkers

pytestmark = pytest.mark.browser
__all__ = ["browser", "stack"]  # fixtures, shared with the other browser tests

SCREENSHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1100, "height": 900}
FIRST_MESSAGE = (
    "Hi {first_name}, it's {texter_name} with Vote Together. Will you vote early? "
    "Reply STOP to opt out."
)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture(scope="module", autouse=True)
def new_yorkers(stack: dict[str, str]) -> None:
    """Voters of the demo campaign whom no state rule holds back, whenever the tests run."""
    add_new_yorkers(stack["state"])


def last_texted(stack: dict[str, str]) -> str:
    """The number the demo organization texted last, from the app's database."""
    with sqlite3.connect(Path(stack["state"]) / "gotv.sqlite3") as database:
        row = database.execute(
            "SELECT to_number FROM message WHERE direction = 'outbound' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert row is not None
    return str(row[0])


def screenshot(target: Page | Locator, name: str, **options: bool) -> None:
    if os.environ.get("GOTV_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        target.screenshot(path=str(SCREENSHOTS / name), **options)  # type: ignore[arg-type]


def new_campaign(page: Page, stack: dict[str, str], name: str, voters: Path | None = None) -> None:
    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_label("Campaign name").fill(name)
    page.get_by_role("button", name="Create campaign").click()
    if voters is not None:
        page.get_by_label("Voter list (CSV or TSV)").set_input_files(voters)
        page.get_by_role("button", name="Upload list").click()
        page.get_by_role("button", name="Start import").click()
        expect(page.locator("#import-summary")).to_contain_text("loaded")


def answer(page: Page, label: str) -> Locator:
    """An answer of a question in the builder, by its label (the first such)."""
    return (
        page.locator(".answer")
        .filter(has=page.locator(".answer-label", has_text=re.compile(f"^{re.escape(label)}$")))
        .first
    )


def add_branch(page: Page) -> None:
    """Ask "Will you vote early?", with a script after Yes and a question after it."""
    page.get_by_label("New question").fill("Will you vote early?")
    page.get_by_label("Choices, one per line").fill("Yes\nNo\nAlready voted")
    page.get_by_role("button", name="Add question").click()
    expect(page.locator("#survey")).to_contain_text("Already voted")
    yes = answer(page, "Yes")
    yes.get_by_label("Wording 1").fill("Great, {first_name}! Early voting is at the library.")
    yes.get_by_label("Another wording (optional)").fill("Wonderful, {first_name}: see you there!")
    expect(yes.locator("[data-check-result]").first).to_contain_text("1 segment")
    yes.get_by_role("button", name="Save script after “Yes”").click()
    expect(page.locator("#builder-status")).to_have_text("Script after “Yes” saved.")
    yes = answer(page, "Yes")
    yes.get_by_text("Ask a question after “Yes”").click()
    yes.get_by_label("Question after “Yes”").fill("Need a ride to the polls?")
    yes.get_by_label("Its answers, one per line").fill("Yes, please\nNo, thanks")
    yes.get_by_role("button", name="Add the question after “Yes”").click()
    expect(answer(page, "Yes")).to_contain_text("Need a ride to the polls?")


def test_an_organizer_builds_a_branching_campaign_section_by_section(
    page: Page, stack: dict[str, str], tmp_path: Path
) -> None:
    voters = tmp_path / "voters.csv"
    voters.write_text(
        "Voter File VANID,FirstName,LastName,CellPhone,ZIP5\n"
        "7001,Ana,Peña,(212) 555-0301,10001\n7002,Ben,Ortiz,(212) 555-0302,10001\n",
        encoding="utf-8",
    )
    new_campaign(page, stack, "Branching drive", voters)
    page.get_by_role("link", name="Back to the campaign").click()
    steps = page.get_by_role("navigation", name="Campaign sections")
    expect(steps.locator('[data-mark="list"]')).to_have_class("mark done")
    expect(steps.locator('[data-mark="message"]')).to_have_class("mark todo")

    page.get_by_label("Initial message").fill(FIRST_MESSAGE)
    expect(page.locator("#preview-list")).to_contain_text("Hi Ana, it's Olivia Organizer")
    page.get_by_role("button", name="Save script", exact=True).click()
    expect(page.locator("#builder-status")).to_have_text("Script saved.")
    expect(steps.locator('[data-mark="message"]')).to_have_class("mark done")
    add_branch(page)
    expect(steps.locator('[data-mark="questions"]')).to_have_class("mark done")

    page.get_by_label("Status").select_option("active")
    page.get_by_role("button", name="Update status").click()
    expect(page.locator("h1")).to_contain_text("active")
    expect(steps.locator('[data-mark="launch"]')).to_have_class("mark done")
    page.reload()  # all of it was saved in place: it is all there after a reload
    expect(answer(page, "Yes")).to_contain_text("Need a ride to the polls?")
    expect(answer(page, "Yes").get_by_label("Wording 2")).to_have_value(
        "Wonderful, {first_name}: see you there!"
    )
    if os.environ.get("GOTV_SCREENSHOTS") == "1":  # the top of the page, not the last anchor
        page.goto(page.url.split("#")[0])
        page.get_by_role("navigation", name="Campaign sections").scroll_into_view_if_needed()
        page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "builder.png")
    screenshot(page.locator("#questions"), "builder-branches.png")


def test_a_volunteer_follows_a_branch_to_the_next_script(
    page: Page, browser: Browser, stack: dict[str, str]
) -> None:
    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_role("link", name="GOTV weekend").click()
    add_branch(page)

    volunteer = browser.new_context(viewport={"width": 400, "height": 850}).new_page()
    log_in(volunteer, stack["app"], "volunteer@demo.test")
    volunteer.locator(".cards li").filter(has_text="GOTV weekend").get_by_role(
        "link", name="Send texts"
    ).click()
    volunteer.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()
    first_name = re.match(r"Hi (\w+),", volunteer.locator("#message-body").inner_text())
    assert first_name, volunteer.content()
    name = first_name.group(1)
    expect(volunteer.locator("#send-button[data-ready]")).to_be_attached()  # read first
    volunteer.get_by_role("button", name="Send", exact=True).click()
    expect(volunteer.locator("#message-body")).not_to_contain_text(f"Hi {name},")
    volunteer.get_by_role("link", name="Your conversations").click()
    volunteer.get_by_role("link", name=re.compile(name)).first.click()

    # One click on the answer: saved, the script after it in the reply, the next question shown.
    volunteer.get_by_label("Yes", exact=True).check()
    expect(volunteer.get_by_label("Reply")).to_have_value(
        f"Great, {name}! Early voting is at the library."
    )
    expect(volunteer.locator("#survey-questions")).to_contain_text("Need a ride to the polls?")
    volunteer.get_by_role("button", name="Use wording 2").click()
    expect(volunteer.get_by_label("Reply")).to_have_value(f"Wonderful, {name}: see you there!")
    volunteer.get_by_role("button", name="Send reply").click()
    expect(volunteer.locator("#thread")).to_contain_text(f"Wonderful, {name}: see you there!")
    volunteer.get_by_label("No, thanks").check()
    expect(volunteer.locator("#tools-status")).to_have_text("Answer saved.")
    volunteer.context.close()

    page.get_by_role("link", name=re.compile("Live dashboard")).click()
    results = page.locator("#survey-results")
    expect(results).to_contain_text("Yes: 1 (100%)")
    expect(results).to_contain_text("After “Yes” to “Will you vote early?”")
    expect(results).to_contain_text("No, thanks: 1")
    screenshot(page, "dashboard.png", full_page=True)


def test_a_first_message_with_a_bad_merge_field_is_kept_as_typed(
    page: Page, stack: dict[str, str]
) -> None:
    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_role("link", name="GOTV weekend").click()
    script = page.get_by_label("Initial message")
    saved = script.input_value()
    typed = "Hi {first_name}, your polling place is {polling_place}. Reply STOP to opt out."

    script.fill(typed)
    expect(page.locator("#preview-unknown")).to_have_text("Unknown merge field: {polling_place}")
    page.get_by_role("button", name="Save script", exact=True).click()

    expect(page.locator("#form-script [data-form-status]")).to_contain_text(
        "merge fields this list does not have: {polling_place}"
    )
    expect(page.locator("#form-script").get_by_role("alert")).to_be_visible()
    expect(script).to_have_value(typed)
    expect(script).to_have_attribute("aria-invalid", "true")
    page.reload()
    expect(page.get_by_label("Initial message")).to_have_value(saved)  # nothing was erased


def test_an_organizer_edits_the_texting_hours_and_sees_each_states_window(
    page: Page, stack: dict[str, str]
) -> None:
    new_campaign(page, stack, "Evening shift")
    page.locator("#start_hour").select_option("10")
    page.locator("#end_hour").select_option("19")
    table = page.locator("#state-hours-table")
    expect(table.get_by_role("row", name=re.compile("^Every other state"))).to_contain_text(
        "Every day: 10:00–19:00"
    )
    expect(table.get_by_role("row", name=re.compile("^RI"))).to_contain_text("Mon–Fri: 10:00–18:00")
    page.get_by_role("button", name="Save texting hours").click()

    expect(page.locator("#builder-status")).to_have_text(
        "Texting hours saved: 10:00–19:00 in each voter's local time."
    )
    expect(page.locator('[data-mark-label="hours"]')).to_have_text("done: 10:00–19:00 local time")
    page.reload()
    expect(page.locator("#start_hour")).to_have_value("10")
    expect(page.locator("#end_hour")).to_have_value("19")


def test_a_list_leaves_out_people_texted_recently_unless_the_organizer_adds_them(
    page: Page, browser: Browser, stack: dict[str, str], tmp_path: Path
) -> None:
    volunteer = browser.new_context().new_page()
    log_in(volunteer, stack["app"], "volunteer@demo.test")
    volunteer.locator(".cards li").filter(has_text="GOTV weekend").get_by_role(
        "link", name="Send texts"
    ).click()
    take = volunteer.get_by_role("button", name=re.compile(r"Get \d+ contacts"))
    if take.count():  # else the volunteer still holds a batch from an earlier test
        take.click()
    with volunteer.expect_response(re.compile(r"/send\.json$")) as sent:
        expect(volunteer.locator("#send-button[data-ready]")).to_be_attached()  # read first
        volunteer.get_by_role("button", name="Send", exact=True).click()
    assert sent.value.ok
    volunteer.context.close()
    texted = last_texted(stack)
    voters = tmp_path / "second.csv"
    voters.write_text(f"cell,first_name\n{texted},Again\n+12125550399,Fresh\n", encoding="utf-8")

    new_campaign(page, stack, "Second push", voters)

    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("1 contact loaded of 2 rows read")
    expect(summary).to_contain_text("1 number was left out")
    page.get_by_role("button", name=re.compile("Add it anyway")).click()
    expect(page.locator("#import-summary")).to_contain_text("1 contact loaded of 1 row read")
    page.get_by_role("link", name="Back to the campaign").click()
    expect(page.locator("#count-contacts")).to_have_text("2")


def test_an_organizer_creates_an_api_token_with_two_scopes(
    page: Page, stack: dict[str, str]
) -> None:
    log_in(page, stack["app"], "organizer@demo.test")
    page.get_by_role("link", name="Settings").click()
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name (what uses it)").fill("Dashboard sync")
    page.get_by_label(re.compile("^campaigns:read")).check()
    page.get_by_label(re.compile("^stats:read")).check()
    page.get_by_role("button", name="Create token").click()

    expect(page.get_by_role("heading", name="Copy your new token now")).to_be_visible()
    expect(page.get_by_role("textbox", name="Token")).to_have_value(re.compile(r"^gotv_"))
    expect(page.get_by_role("list", name="The organization's tokens")).to_contain_text(
        "campaigns:read, stats:read"
    )
