"""The volunteer's texting, in a phone-sized browser: joining by an invitation link, a batch,
twenty texts with the Enter key, a reply arriving live, answered with a canned response, a tag,
and an opt-out; then one test for each problem of issue 21 (a conversation given away while
open, replies on the send screen, quick taps, the inbox's context, who opens later, the
keyboard, Spanish).

With GOTV_SCREENSHOTS=1 the tests also write the images the README shows to docs/screenshots/:
send-loop-phone.png, send-reply-arriving-phone.png, inbox-phone.png, thread-phone.png and
send-loop-phone-es.png.
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
from zoneinfo import ZoneInfo

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
    expect(page.locator("#send-empty")).to_contain_text("Welcome! Press “Get")  # not "done"
    page.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()
    expect(page.get_by_role("status").first).to_contain_text("new contacts are yours")
    send = page.get_by_role("button", name="Send", exact=True)
    expect(send).to_be_focused()
    assert_fits_a_phone(page)
    screenshot(page, "send-loop-phone.png")

    status = page.locator("#send-status")
    for sent in range(1, 21):
        expect(page.locator("#send-button[data-ready]")).to_be_attached()  # read: texts.MIN_READ
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
    listening(page)

    voter_replies(stack, voter, "Yes! Where do I vote?")  # no reload from here on
    expect(conversation).to_contain_text("1 unread")
    expect(conversation).to_contain_text("needs reply")
    expect(page.locator("#live-announcer")).to_contain_text(f"New reply from {name.group(1)}")
    assert_fits_a_phone(page)

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
    listening(page)

    voter_replies(stack, voter, "Thanks. Please don't text me again though")
    expect(page.locator(".thread")).to_contain_text("don't text me again")  # live, in place
    # A phrase that opts out: said where the volunteer looks, and the page no longer offers
    # to reply.
    expect(page.locator("#conversation-notice")).to_contain_text("This person opted out")
    expect(page.get_by_role("button", name="Send reply")).to_be_disabled()
    assert_fits_a_phone(page)
    page.reload()
    expect(page.get_by_text("This person opted out.")).to_be_visible()


# --- The volunteer's screens, second round (issue 21): one test per problem ------------------

TAPPING_PHONE = {"width": 390, "height": 844}


def database(stack: dict[str, str]) -> sqlite3.Connection:
    return sqlite3.connect(Path(stack["state"]) / "gotv.sqlite3")


def add_voters(
    stack: dict[str, str],
    first: int,
    count: int,
    campaign_id: int | None = None,
    zone: str = "America/New_York",
    state: str = "NY",
) -> list[str]:
    """Add `count` voters (cells from +1646555`first`) to a campaign (the demo's by default)."""
    now = datetime.now(UTC).isoformat(sep=" ")
    cells = [f"+1646555{first + n:04d}" for n in range(count)]
    with database(stack) as db:
        campaign_id = campaign_id or db.execute("SELECT min(id) FROM campaign").fetchone()[0]
        # These tests' volunteers take new batches while earlier tests' replies wait for them.
        db.execute("UPDATE campaign SET batch_while_replies_wait = 1 WHERE id = ?", (campaign_id,))
        db.executemany(
            "INSERT INTO contact (campaign_id, cell, first_name, last_name, zip, state,"
            " rule_states, time_zones, custom_fields, status, needs_reply, opt_out_suggested,"
            " unread, updated_at) VALUES (?, ?, ?, 'Voter', '10001', ?, ?, ?, '{}', 'new', 0, 0,"
            " 0, ?)",
            [
                (campaign_id, cell, f"Voter{first + n}", state, state, zone, now)
                for n, cell in enumerate(cells)
            ],
        )
    return cells


def initial_texts_by(stack: dict[str, str], email: str) -> int:
    with database(stack) as db:
        return int(
            db.execute(
                "SELECT count(*) FROM message JOIN user ON user.id = message.texter_id"
                " WHERE user.email = ? AND message.is_initial",
                (email,),
            ).fetchone()[0]
        )


def texted_cells(stack: dict[str, str], email: str) -> list[str]:
    """The cells a volunteer texted, first texted first."""
    with database(stack) as db:
        return [
            row[0]
            for row in db.execute(
                "SELECT message.to_number FROM message JOIN user ON user.id = message.texter_id"
                " WHERE user.email = ? AND message.is_initial ORDER BY message.id",
                (email,),
            )
        ]


def listening(page: Page) -> None:
    """Wait until the page's live stream is open: the server hears this volunteer's events."""
    expect(page.locator("[data-live=connected]")).to_have_count(1)


def send_texts(page: Page, count: int) -> None:
    """Press Enter `count` times, each once the person on screen may be sent (read)."""
    status = page.locator("#send-status")
    for sent in range(1, count + 1):
        expect(page.locator("#send-button[data-ready]")).to_be_attached()
        page.keyboard.press("Enter")
        expect(status).to_contain_text(re.compile(rf"\b{sent} texts? sent this session"))


def start_texting(page: Page, stack: dict[str, str], email: str) -> None:
    """Log in and take a batch of the demo campaign."""
    log_in(page, stack["app"], email)
    demo = page.locator(".cards li", has_text="GOTV weekend")
    demo.get_by_role("link", name="Send texts").click()
    page.get_by_role("button", name=re.compile(r"Get \d+ contacts")).click()


def test_1_a_conversation_given_away_while_open_says_so_and_keeps_the_typed_reply(
    browser: Browser, stack: dict[str, str]
) -> None:
    add_voters(stack, 0, 3)
    volunteer = browser.new_context().new_page()
    start_texting(volunteer, stack, "volunteer@demo.test")
    send_texts(volunteer, 1)
    voter = texted_cells(stack, "volunteer@demo.test")[-1]
    volunteer.get_by_role("link", name=re.compile("Your conversations")).click()
    listening(volunteer)
    voter_replies(stack, voter, "Where is the early vote site?")  # it comes in live
    volunteer.locator("#conversation-list li", has_text="early vote site").get_by_role(
        "link"
    ).click()
    reply = volunteer.get_by_label("Reply", exact=True)
    reply.fill("At the library on Main St")
    listening(volunteer)
    contact_url = volunteer.url

    organizer = browser.new_context().new_page()
    log_in(organizer, stack["app"], "organizer@demo.test")
    organizer.goto(contact_url.replace("/texting/conversations/", "/review/conversations/"))
    organizer.get_by_label("Reassign to").select_option(label="Sam")
    organizer.get_by_role("button", name="Reassign").click()

    notice = volunteer.locator("#conversation-notice")
    expect(notice).to_contain_text("no longer yours")  # live, where the volunteer looks
    expect(notice).to_contain_text("What you typed is kept below")
    expect(reply).to_have_value("At the library on Main St")
    expect(volunteer.get_by_role("button", name="Send reply")).to_be_disabled()
    volunteer.reload()  # the styled page of a conversation that is not theirs any more
    expect(volunteer.get_by_role("heading", name="This conversation is not here")).to_be_visible()
    expect(volunteer.get_by_role("link", name="Back to texting")).to_be_visible()
    volunteer.goto(stack["app"] + "/no/such/page")
    expect(volunteer.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(volunteer.locator("header.topbar")).to_be_visible()
    volunteer.context.close()
    organizer.context.close()


def test_1_signed_out_elsewhere_an_open_thread_goes_to_sign_in_and_keeps_the_draft(
    browser: Browser, stack: dict[str, str]
) -> None:
    add_voters(stack, 50, 1)
    context = browser.new_context()
    volunteer = context.new_page()
    start_texting(volunteer, stack, "volunteer@demo.test")
    send_texts(volunteer, 1)
    with database(stack) as db:
        contact = db.execute(
            "SELECT id FROM contact WHERE cell = ?",
            (texted_cells(stack, "volunteer@demo.test")[-1],),
        ).fetchone()[0]
    volunteer.goto(f"{stack['app']}/texting/conversations/{contact}")
    volunteer.get_by_label("Reply", exact=True).fill("See you at the polls")
    listening(volunteer)

    elsewhere = context.new_page()  # the same volunteer, another tab: a lost phone, say
    elsewhere.goto(stack["app"] + "/account")
    elsewhere.get_by_role("button", name="Sign out everywhere").click()

    expect(volunteer).to_have_url(re.compile(rf"/login\?next=.*conversations%2F{contact}$"))
    volunteer.get_by_label("Email").fill("volunteer@demo.test")
    volunteer.get_by_label("Password").fill("demo-password")
    volunteer.get_by_role("button", name="Log in").click()
    expect(volunteer.get_by_label("Reply", exact=True)).to_have_value("See you at the polls")
    context.close()


def test_2_the_send_screen_shows_a_reply_as_it_arrives(
    browser: Browser, stack: dict[str, str]
) -> None:
    add_voters(stack, 900, 4)  # not 555-01xx: fictional, never texted (issue 19)
    context = browser.new_context(viewport=TAPPING_PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    start_texting(page, stack, "sam@demo.test")
    send_texts(page, 2)
    voter = texted_cells(stack, "sam@demo.test")[-1]
    banner = page.locator("#replies-banner")
    before = len((page.locator("#send-loop").get_attribute("data-waiting-ids") or "").split())
    listening(page)

    voter_replies(stack, voter, "where is the early vote site?")

    expect(banner).to_be_visible()
    expect(banner).to_contain_text("where is the early vote site?")
    expect(page.locator("#replies-waiting")).to_contain_text(f"{before + 1} waiting")
    expect(page.locator("#live-announcer")).to_contain_text("New reply from")
    assert_fits_a_phone(page)
    screenshot(page, "send-reply-arriving-phone.png")
    page.get_by_role("link", name="Answer now").click()
    expect(page.locator(".thread")).to_contain_text("where is the early vote site?")
    context.close()


@pytest.mark.parametrize("interval_ms", [50, 80, 150])
def test_3_two_quick_taps_on_a_phone_send_one_text(
    browser: Browser, stack: dict[str, str], interval_ms: int
) -> None:
    add_voters(stack, 200 + interval_ms, 3)
    context = browser.new_context(
        viewport=TAPPING_PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    start_texting(page, stack, "sam@demo.test")
    before = initial_texts_by(stack, "sam@demo.test")
    expect(page.locator("#send-button[data-ready]")).to_be_attached()

    page.tap("#send-button")
    page.wait_for_timeout(interval_ms)  # the interval under test, not a wait for an event
    page.tap("#send-button")

    expect(page.locator("#send-status")).to_contain_text("1 text sent this session")
    expect(page.locator("#send-button[data-ready]")).to_be_attached()  # the next, now readable
    assert initial_texts_by(stack, "sam@demo.test") == before + 1
    expect(page.locator("#send-status")).to_contain_text("1 text sent this session")
    expect(page.locator("#send-hint")).to_have_text("")
    context.close()


def test_3_a_double_click_on_a_desktop_sends_one_text(
    browser: Browser, stack: dict[str, str]
) -> None:
    add_voters(stack, 300, 3)
    page = browser.new_context().new_page()
    start_texting(page, stack, "sam@demo.test")
    before = initial_texts_by(stack, "sam@demo.test")
    expect(page.locator("#send-button[data-ready]")).to_be_attached()

    page.click("#send-button")
    page.wait_for_timeout(150)
    page.click("#send-button")

    expect(page.locator("#send-button[data-ready]")).to_be_attached()
    assert initial_texts_by(stack, "sam@demo.test") == before + 1
    page.context.close()


def test_4_conversations_carry_their_context_and_a_blocked_thread_says_why(
    phone: Page, stack: dict[str, str]
) -> None:
    add_voters(stack, 400, 3)
    page = phone
    start_texting(page, stack, "volunteer@demo.test")
    send_texts(page, 3)
    waiting, blocked, quiet = texted_cells(stack, "volunteer@demo.test")[-3:]
    page.get_by_role("link", name=re.compile("Your conversations")).click()
    listening(page)
    voter_replies(stack, waiting, "Can I bring my kids to the polls?")
    expect(page.locator("#conversation-list li", has_text="Can I bring my kids")).to_have_count(1)
    with database(stack) as db:
        db.execute(
            "INSERT INTO blocked_number (organization_id, cell, error_code, reason, created_at)"
            " SELECT organization_id, ?, 30006, 'landline', ? FROM user WHERE email = ?",
            (blocked, datetime.now(UTC).isoformat(sep=" "), "volunteer@demo.test"),
        )
    page.reload()

    row = page.locator("#conversation-list li", has_text="Can I bring my kids")
    expect(row).to_contain_text("needs reply")
    expect(row.locator(".badge.waited")).to_contain_text(re.compile(r"waiting \d+ min"))
    expect(row.locator("time")).not_to_contain_text("UTC")  # in the volunteer's own time
    assert page.locator("#conversation-list li").first.get_attribute("data-needs-reply") == "yes"
    blocked_row = page.locator("#conversation-list li", has_text="cannot receive texts")
    expect(blocked_row).to_have_count(1)
    assert_fits_a_phone(page)
    screenshot(page, "inbox-phone.png")

    blocked_row.get_by_role("link").click()
    expect(page.locator("#no-reply-reason")).to_contain_text("cannot receive texts")
    expect(page.get_by_label("Reply", exact=True)).to_have_count(0)
    page.go_back()
    row.get_by_role("link").click()
    expect(page.locator(".thread time").first).not_to_contain_text("UTC")
    assert_fits_a_phone(page)
    screenshot(page, "thread-phone.png")
    assert quiet


def test_5_later_is_visible_and_a_newcomers_first_screen_explains(
    browser: Browser, stack: dict[str, str]
) -> None:
    # A campaign open in New York from this hour for two (so never in its closing buffer, the
    # last 10 minutes): Los Angeles, three hours behind, opens later.
    hour = datetime.now(ZoneInfo("America/New_York")).hour
    now = datetime.now(UTC).isoformat(sep=" ")
    with database(stack) as db:
        organization = db.execute("SELECT min(id) FROM organization").fetchone()[0]
        campaign = db.execute(
            "INSERT INTO campaign (organization_id, name, script, custom_field_names, status,"
            " window_start_hour, window_end_hour, smart_encoding, batch_size,"
            " batch_while_replies_wait, release_after_minutes, created_at, list_columns)"
            " VALUES (?, 'Early vote', 'Hi {first_name}, early voting is open!', '[]', 'active',"
            " ?, ?, 1, 200, 1, 60, ?, '[]') RETURNING id",
            (organization, hour, hour + 2, now),  # (not its last 10 minutes: issue 19)
        ).fetchone()[0]
    add_voters(stack, 500, 2, campaign_id=campaign)
    add_voters(stack, 600, 3, campaign_id=campaign, zone="America/Los_Angeles", state="")
    page = browser.new_context().new_page()
    log_in(page, stack["app"], "sam@demo.test")
    page.goto(f"{stack['app']}/texting/{campaign}/send")
    empty = page.locator("#send-empty")
    expect(empty).to_contain_text("Welcome! Press “Get 200 contacts” below to start.")
    expect(empty).not_to_contain_text("done")

    page.get_by_role("button", name="Get 200 contacts").click()
    send_texts(page, 2)

    later = page.locator("#pool-later")
    expect(later).to_be_visible()
    expect(later).to_contain_text(f"3 people open at {hour % 12 or 12}:00")
    page.get_by_role("button", name="Get 200 contacts").click()
    expect(page.get_by_role("alert").first).to_contain_text(
        "Nobody can be texted right now: 3 people open at"
    )
    page.context.close()


def test_6_the_keyboard_answers_conversations_and_opting_out_asks_once(
    browser: Browser, stack: dict[str, str]
) -> None:
    add_voters(stack, 700, 3)
    page = browser.new_context().new_page()
    start_texting(page, stack, "volunteer@demo.test")
    send_texts(page, 3)
    first, second, third = texted_cells(stack, "volunteer@demo.test")[-3:]
    page.get_by_role("link", name=re.compile("Your conversations")).click()
    listening(page)
    for voter, body in ((first, "Keyboard one?"), (second, "Keyboard two?"), (third, "Three?")):
        voter_replies(stack, voter, body)
        expect(page.locator("#conversation-list li", has_text=body)).to_have_count(1)

    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("j")  # the conversation waiting longest
    expect(page.locator(".thread")).to_be_visible()
    page.keyboard.press("1")  # the first canned response
    reply = page.get_by_label("Reply", exact=True)
    expect(reply).to_have_value(re.compile("look up your polling place"))
    page.get_by_label("Then open the next person waiting").check()
    shown = page.locator("h1").text_content()
    reply.press("Control+Enter")
    expect(page.locator(".flash.success")).to_contain_text("Here is the next person waiting")
    expect(page.locator("h1")).not_to_have_text(shown or "")
    page.keyboard.press("k")
    expect(page.locator(".thread")).to_be_visible()

    danger = page.get_by_role("button", name=re.compile("^Yes, opt out"))
    expect(danger).to_be_hidden()
    page.get_by_text("Opt this person out…").click()
    danger.click()
    expect(page.get_by_text("This person opted out.")).to_be_visible()
    page.context.close()


def test_7_a_volunteer_texts_in_spanish(browser: Browser, stack: dict[str, str]) -> None:
    add_voters(stack, 800, 3)
    context = browser.new_context(
        viewport=TAPPING_PHONE, device_scale_factor=2, is_mobile=True, locale="es-US"
    )
    page = context.new_page()
    page.goto(stack["app"] + "/login")
    expect(page.get_by_role("heading", name="Iniciar sesión")).to_be_visible()
    page.get_by_label("Correo electrónico").fill("sam@demo.test")
    page.get_by_label("Contraseña").fill("demo-password")
    page.get_by_role("button", name="Iniciar sesión").click()
    demo = page.locator(".cards li", has_text="GOTV weekend")
    demo.get_by_role("link", name="Enviar mensajes").click()
    page.get_by_role("button", name=re.compile(r"Tomar \d+ contactos")).click()
    expect(page.get_by_role("button", name="Enviar", exact=True)).to_be_visible()
    expect(page.locator("#send-button[data-ready]")).to_be_attached()
    page.keyboard.press("Enter")
    expect(page.locator("#send-status")).to_contain_text("1 mensaje enviado en esta sesión.")
    assert_fits_a_phone(page)
    screenshot(page, "send-loop-phone-es.png")
    context.close()
