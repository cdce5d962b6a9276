"""The campaign builder: sections with marks, saving in place, a refused save that keeps every
field as typed, live checks, texting hours within the law (page and API), and launching."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

import pytest
import time_machine
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.campaigns import builder
from gotv.compliance import hours
from gotv.db import db
from gotv.fakecarrier import FakeCarrier
from gotv.models import (
    AuditEvent,
    Campaign,
    CampaignStatus,
    Message,
    MessageStatus,
    Organization,
    User,
)
from gotv.texting import texts
from tests.conftest import csrf_token, login
from tests.factories import (
    make_api_token,
    make_campaign,
    make_contact,
    make_user,
    queue_initial_message,
)
from workers.texting import send_message

JSON = {"Accept": "application/json"}


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(
        organization,
        name="Early vote",
        script="Hi {first_name}, it's {texter_name} with Vote Together. Reply STOP to opt out.",
        status=CampaignStatus.DRAFT,
    )


def page_token(client: FlaskClient, campaign: Campaign) -> str:
    return csrf_token(client.get(f"/campaigns/{campaign.id}").text)


def marks(page: str) -> dict[str, str]:
    """Each section's mark on the page (its state), from the list of sections."""
    nav = page[page.index('aria-label="Campaign sections"') :]
    found = re.findall(r'class="mark (\w+)" data-mark="(\w+)"', nav)[:8]
    return {section: state for state, section in found}


# --- The sections and their marks ------------------------------------------------------------


def test_a_new_campaign_shows_every_section_with_what_is_left_to_do(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)
    created = client.post(
        "/campaigns",
        data={"csrf_token": csrf_token(client.get("/campaigns").text), "name": "Fresh"},
    )

    page = client.get(created.headers["Location"]).text

    assert marks(page) == {
        "basics": "done",
        "list": "todo",
        "message": "todo",
        "questions": "optional",
        "canned": "optional",
        "hours": "done",
        "sender": "done",
        "launch": "todo",
    }
    assert "Write the first message." in page
    assert 'src="/static/builder.js"' in page


def test_a_finished_campaign_is_marked_done_where_it_is(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    make_contact(campaign)
    campaign.status = CampaignStatus.ACTIVE
    db.session.flush()
    login(client, organizer)

    found = marks(client.get(f"/campaigns/{campaign.id}").text)

    assert (found["list"], found["message"], found["launch"]) == ("done", "done", "done")


def test_advice_on_the_first_message_marks_it_for_a_check(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    campaign.script = "Hi {first_name}!"
    db.session.flush()
    login(client, organizer)

    page = client.get(f"/campaigns/{campaign.id}").text

    assert marks(page)["message"] == "warn"
    assert "Tell people how to stop" in page


# --- Saving in place, and a refused save that keeps what was typed ---------------------------


def test_saving_the_script_in_place_answers_with_the_marks_and_the_launch_section(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    token = page_token(client, campaign)

    response = client.post(
        f"/campaigns/{campaign.id}/script",
        data={
            "csrf_token": token,
            "script": "Hi {first_name}! Reply STOP to opt out. -{texter_name}",
        },
        headers=JSON,
    )

    body = response.get_json()
    assert response.status_code == 200
    assert body["ok"] and body["message"] == "Script saved."
    assert body["marks"]["message"] == {"state": "done", "label": "done"}
    assert 'id="launch"' in body["sections"]["launch"]
    assert db.session.get(Campaign, campaign.id).script.startswith("Hi {first_name}!")


def test_a_script_with_an_unknown_merge_field_is_refused_and_kept_as_typed(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    saved = campaign.script
    typed = "Hi {first_name}, vote at {precinct}! Reply STOP to opt out."
    login(client, organizer)
    token = page_token(client, campaign)
    form = {"csrf_token": token, "script": typed, "_form": "form-script"}

    as_json = client.post(f"/campaigns/{campaign.id}/script", data=form, headers=JSON)
    as_page = client.post(f"/campaigns/{campaign.id}/script", data=form)

    assert as_json.status_code == 422
    assert as_json.get_json()["message"] == (
        "The script uses merge fields this list does not have: {precinct}."
    )
    assert as_json.get_json()["field"] == "script"
    # Without JavaScript: the page again, the textarea holding what was typed, the reason beside.
    assert as_page.status_code == 422
    assert f">{typed}</textarea>" in as_page.text
    assert "this list does not have: {precinct}" in as_page.text
    db.session.expire_all()
    assert db.session.get(Campaign, campaign.id).script == saved


def test_every_other_field_of_the_page_keeps_its_saved_value_after_a_refusal(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    token = page_token(client, campaign)

    page = client.post(
        f"/campaigns/{campaign.id}/name",
        data={"csrf_token": token, "name": "", "_form": "form-name"},
    ).text

    assert 'name="name" required maxlength="200" value=""' in page  # as typed: empty
    assert campaign.script.replace("'", "&#39;") in page  # the script as saved


def test_renaming_the_campaign_is_audited(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    client.post(
        f"/campaigns/{campaign.id}/name",
        data={"csrf_token": page_token(client, campaign), "name": "  Early vote, week 2 "},
        headers=JSON,
    )

    assert db.session.get(Campaign, campaign.id).name == "Early vote, week 2"
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.details["old"]) == ("campaign_renamed", "Early vote")


def test_a_campaign_whose_script_has_unknown_merge_fields_cannot_launch(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    campaign.script = "Hi {nickname}"
    db.session.flush()
    login(client, organizer)

    response = client.post(
        f"/campaigns/{campaign.id}/status",
        data={"csrf_token": page_token(client, campaign), "status": "active"},
        headers=JSON,
    )

    assert response.status_code == 422
    assert "merge fields the list does not have: {nickname}" in response.get_json()["message"]
    assert db.session.get(Campaign, campaign.id).status == CampaignStatus.DRAFT


# --- Live checks -----------------------------------------------------------------------------


def test_the_draft_first_message_is_checked_for_advice_and_cost_as_it_is_typed(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    for name in ("Ana", "Ben"):
        make_contact(campaign, first_name=name)
    login(client, organizer)

    response = client.post(
        f"/campaigns/{campaign.id}/script/preview",
        data={
            "csrf_token": page_token(client, campaign),
            "script": "Hi {first_name}!",
            "recipients": "2",
        },
        headers=JSON,
    )

    body = response.get_json()
    assert [p["text"] for p in body["previews"]] == ["Hi Ana!", "Hi Ben!"]
    assert body["needs_opt_out"] is True
    assert any("Say who is texting" in warning for warning in body["warnings"])
    assert 'id="cost-total">$0.02<' in body["cost_html"]  # 2 texts x 1 segment x $0.0083


def test_a_follow_up_script_is_checked_for_merge_fields_and_segments_as_it_is_typed(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    make_contact(campaign, first_name="Zoë")
    login(client, organizer)

    response = client.post(
        f"/campaigns/{campaign.id}/check",
        data={
            "csrf_token": page_token(client, campaign),
            "text": "Thanks {first_name}, see {ward}",
        },
        headers=JSON,
    )

    found = response.get_json()
    assert found["unknown"] == ["ward"]
    assert found["sample"] == "Thanks Zoë, see {ward}"
    assert (found["characters"], found["segments"]) == (len(found["sample"]), 1)
    assert found["sample_name"].startswith("Zoë ")


# --- Texting hours ---------------------------------------------------------------------------


def test_an_organizer_sets_the_hours_within_the_federal_limits(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    response = client.post(
        f"/campaigns/{campaign.id}/hours",
        data={"csrf_token": page_token(client, campaign), "start_hour": "10", "end_hour": "19"},
        headers=JSON,
    )

    assert response.get_json()["message"] == (
        "Texting hours saved: 10:00–19:00 in each voter's local time."
    )
    assert response.get_json()["marks"]["hours"]["label"] == "done: 10:00–19:00 local time"
    saved = db.session.get(Campaign, campaign.id)
    assert (saved.window_start_hour, saved.window_end_hour) == (10, 19)
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.details["new"]) == ("texting_hours_changed", "10:00–19:00")


@pytest.mark.parametrize(("start", "end"), [("7", "20"), ("9", "22"), ("12", "12"), ("15", "10")])
def test_hours_wider_than_the_law_or_backwards_are_refused_as_typed(
    client: FlaskClient, organizer: User, campaign: Campaign, start: str, end: str
) -> None:
    login(client, organizer)
    form = {"csrf_token": page_token(client, campaign), "start_hour": start, "end_hour": end}

    refused = client.post(f"/campaigns/{campaign.id}/hours", data={**form, "_form": "form-hours"})

    assert refused.status_code == 422
    assert "must start at 8:00 or later and end by 21:00" in refused.text
    saved = db.session.get(Campaign, campaign.id)
    assert (saved.window_start_hour, saved.window_end_hour) == (9, 20)


def test_the_page_shows_the_window_each_state_leaves_and_previews_new_hours(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    make_contact(campaign, state="RI", rule_states="RI")
    login(client, organizer)

    page = client.get(f"/campaigns/{campaign.id}").text
    preview = client.get(
        f"/campaigns/{campaign.id}/hours/preview", query_string={"start_hour": 8, "end_hour": 21}
    )

    ri = re.search(r'<tr class="in-list">\s*<th scope="row">RI.*?</tr>', page, re.S)
    assert ri and "Mon–Fri: 9:00–18:00" in ri.group(0) and "Sun: no texting" in ri.group(0)
    assert "Every other state" in page and "Every day: 9:00–20:00" in page
    assert "Every day: 8:00–21:00" in preview.get_json()["html"]
    assert "Every day: 10:00–21:00" in preview.get_json()["html"]  # Kentucky opens at ten


def test_hours_set_wider_than_the_law_outside_the_builder_are_pointed_out(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    campaign.window_start_hour, campaign.window_end_hour = 0, 24  # as the demo seeds it
    db.session.flush()
    login(client, organizer)

    page = client.get(f"/campaigns/{campaign.id}").text

    assert 'id="hours-too-wide"' in page
    assert '<option value="8" selected>' in page and '<option value="21" selected>' in page


def test_the_state_table_narrows_the_campaign_window_never_widens_it() -> None:
    table = {row.state: row for row in hours.state_hours(8, 21)}

    assert [(d.days, d.text) for d in table["KY"].days] == [("Every day", "10:00–21:00")]
    assert [(d.days, d.text) for d in table["TX"].days] == [
        ("Mon–Sat", "9:00–21:00"),
        ("Sun", "12:00–21:00"),
    ]
    assert [(d.days, d.text) for d in table[""].days] == [("Every day", "8:00–21:00")]


def new_york(moment: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-04T{moment}-05:00")  # a Wednesday


def first_text(campaign: Campaign, texter: User, at: str) -> Message:
    """Queue the first text to a new New York voter of the campaign at `at`, as the click does."""
    contact = make_contact(campaign, time_zones="America/New_York")
    return queue_initial_message(
        campaign, contact.id, texter, secrets.token_urlsafe(24), new_york(at)
    )


def test_a_campaigns_own_hours_hold_at_the_click_and_at_the_last_gate(
    organization: Organization,
    organizer: User,
    volunteer: User,
    other_org_organizer: User,
    carrier: FakeCarrier,
) -> None:
    ours = make_campaign(organization, script="Hi {first_name}!")
    builder.set_hours(ours, 10, 19, organizer.id)
    theirs = make_campaign(other_org_organizer.organization, script="Hi {first_name}!")

    # 9:30 is inside the default 9:00-20:00 (the other organization's) but not inside ours.
    first_text(theirs, make_user(other_org_organizer.organization), "09:30:00")
    with pytest.raises(texts.CannotText, match="outside this person's texting hours"):
        first_text(ours, volunteer, "09:30:00")
    # The closing buffer moves with the campaign's end: no first text after 18:50.
    with pytest.raises(texts.CannotText, match="outside this person's texting hours"):
        first_text(ours, volunteer, "18:55:00")
    # (another volunteer: the clock went back, and each volunteer's read gate keeps time)
    late = first_text(ours, make_user(organization), "18:45:00")
    db.session.commit()
    with time_machine.travel(new_york("19:05:00"), tick=False):
        send_message(late.id)  # still queued when the campaign's hours end

    db.session.refresh(late)
    assert (late.status, late.refusal_reason) == (MessageStatus.REFUSED, "quiet_hours")
    assert carrier.requests == []


def test_the_api_reads_and_sets_the_hours_within_the_law(
    client: FlaskClient, organization: Organization, organizer: User, campaign: Campaign
) -> None:
    secret = make_api_token(organization, organizer, ["campaigns:read", "campaigns:write"])
    auth = {"Authorization": f"Bearer {secret}"}
    url = f"/api/v1/campaigns/{campaign.id}/texting-hours"

    before = client.get(url, headers=auth).get_json()
    wide = client.put(url, json={"start_hour": 7, "end_hour": 21}, headers=auth)
    set_ = client.put(url, json={"start_hour": 10, "end_hour": 18}, headers=auth)

    ri = next(row for row in before["by_state"] if row["state"] == "RI")
    assert ri["windows"][0] == {"days": "Mon–Fri", "start": "09:00", "end": "18:00"}
    assert {"days": "Sun", "start": None, "end": None} in ri["windows"]
    assert (wide.status_code, wide.get_json()["error"]["code"]) == (422, "invalid_hours")
    assert set_.status_code == 200 and set_.get_json()["start_hour"] == 10
    assert client.get(f"/api/v1/campaigns/{campaign.id}", headers=auth).get_json()[
        "texting_hours"
    ] == {"start_hour": 10, "end_hour": 18}
    event = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "texting_hours_changed")
    )
    assert event.one().details["token_id"] is not None
