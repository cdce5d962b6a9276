"""CSV exports: formula-safe cells, a campaign's contacts and messages, streamed and audited."""

from __future__ import annotations

import csv
import io
import os
import time

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.campaigns import review
from gotv.compliance import optouts
from gotv.db import db
from gotv.lists import exports
from gotv.models import (
    AuditEvent,
    Campaign,
    ContactStatus,
    ContactTag,
    MessageStatus,
    OptOut,
    Organization,
    SurveyAnswer,
    User,
)
from tests.conftest import login
from tests.factories import (
    insert_contacts,
    make_campaign,
    make_contact,
    make_conversation,
    make_message,
    make_question,
    make_tag,
)

# The 1M-row test: rows, and the most memory the export may take on top of what was there.
BIG_EXPORT_ROWS = 1_000_000
MEMORY_LIMIT = 100 * 1024 * 1024


def resident_bytes() -> int:
    """This process's resident memory now (Linux), C allocations included."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize(
    "value",
    [
        "=1+1",
        "+12125550200",
        "-2+3",
        "@SUM(A1)",
        "\t=1",
        "\r=1",
        "\n=1",
        " =HYPERLINK()",
        "  +1",
        "\u00a0=1",
        "\t",
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_made_text(value: str) -> None:
    assert exports.safe_cell(value) == "'" + value


@pytest.mark.parametrize(
    ("value", "shown"),
    [("Maria", "Maria"), (" Maria", " Maria"), ("a=b", "a=b"), ("", ""), (None, ""), (42, "42")],
)
def test_a_harmless_cell_is_left_alone(value: object, shown: str) -> None:
    assert exports.safe_cell(value) == shown


def test_chunks_join_into_one_csv_file() -> None:
    rows = [[n, f"=cmd{n}"] for n in range(1000)]

    pieces = list(exports.csv_chunks(["n", "value"], rows, chunk_bytes=1000))

    assert len(pieces) > 5
    parsed = list(csv.reader(io.StringIO("".join(pieces))))
    assert parsed[0] == ["n", "value"]
    assert parsed[1:] == [[str(n), f"'=cmd{n}"] for n in range(1000)]


def read_csv(client: FlaskClient, url: str) -> list[dict[str, str]]:
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def exports_audited(organization: Organization) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            select(AuditEvent).where(
                AuditEvent.organization_id == organization.id, AuditEvent.action == "export"
            )
        )
    )


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, custom_field_names=["ward", "precinct"])


def test_the_contacts_export_has_status_volunteer_opt_out_last_reply_and_list_fields(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    volunteer: User,
    campaign: Campaign,
) -> None:
    replied = make_conversation(
        campaign,
        volunteer,
        ("First answer", '=HYPERLINK("http://evil")'),
        first_name="Ana",
        custom_fields={"ward": "7", "precinct": "@A1"},
    )
    replied.needs_reply = True
    stopped = make_conversation(campaign, volunteer, ("STOP",), first_name="-Bo")
    opt_out_id = optouts.record_opt_out(organization.id, stopped.cell, "inbound_keyword")
    opt_out = db.session.get(OptOut, opt_out_id)
    make_contact(campaign, first_name="Cy", custom_fields={"ward": "9"})
    login(client, organizer)

    rows = read_csv(client, f"/campaigns/{campaign.id}/export/contacts.csv")

    assert list(rows[0]) == [*exports.CONTACT_COLUMNS, "tags", "ward", "precinct"]
    ana, bo, cy = rows
    assert (ana["first_name"], ana["status"], ana["needs_reply"]) == ("Ana", "texted", "True")
    assert ana["texter"] == volunteer.name
    assert ana["last_reply"] == '\'=HYPERLINK("http://evil")'
    assert ana["last_reply_at"] != ""
    assert (ana["ward"], ana["precinct"]) == ("7", "'@A1")
    assert ana["opted_out_at"] == ""
    assert ana["cell"] == "'" + replied.cell
    assert bo["first_name"] == "'-Bo"
    assert opt_out is not None and bo["opted_out_at"] == str(opt_out.created_at)
    assert bo["last_reply"] == "STOP"
    assert (cy["status"], cy["texter"], cy["last_reply"], cy["ward"], cy["precinct"]) == (
        "new",
        "",
        "",
        "9",
        "",
    )
    (entry,) = exports_audited(organization)
    assert entry.user_id == organizer.id
    assert entry.details["export"] == "contacts" and entry.details["campaign_id"] == campaign.id


def test_the_contacts_export_has_each_contacts_tags_and_survey_answers(
    client: FlaskClient, organization: Organization, organizer: User, campaign: Campaign
) -> None:
    question = make_question(campaign, "Will you vote?", ("Yes", "No"))
    ride = make_question(campaign, "Need a ride?", ("Yes", "=No"))
    ana = make_contact(campaign, first_name="Ana")
    make_contact(campaign, first_name="Bo")
    for tag in (make_tag(organization, "Volunteer"), make_tag(organization, "@Ride")):
        db.session.add(ContactTag(contact_id=ana.id, tag_id=tag.id))
    db.session.add_all(
        [
            SurveyAnswer(
                contact_id=ana.id, question_id=question.id, choice_id=question.choices[0].id
            ),
            SurveyAnswer(contact_id=ana.id, question_id=ride.id, choice_id=ride.choices[1].id),
        ]
    )
    db.session.commit()
    login(client, organizer)

    rows = read_csv(client, f"/campaigns/{campaign.id}/export/contacts.csv")

    assert list(rows[0])[len(exports.CONTACT_COLUMNS) :] == [
        "tags",
        "survey: Will you vote?",
        "survey: Need a ride?",
        "ward",
        "precinct",
    ]
    by_name = {row["first_name"]: row for row in rows}
    assert sorted(by_name["Ana"]["tags"].lstrip("'").split("; ")) == ["@Ride", "Volunteer"]
    assert by_name["Ana"]["survey: Will you vote?"] == "Yes"
    assert by_name["Ana"]["survey: Need a ride?"] == "'=No"
    assert (by_name["Bo"]["tags"], by_name["Bo"]["survey: Will you vote?"]) == ("", "")


def test_the_messages_export_lists_the_campaigns_messages_oldest_first(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    volunteer: User,
    campaign: Campaign,
) -> None:
    contact = make_conversation(campaign, volunteer, ("+1 yes",), first_name="Ana")
    make_message(contact, body="=cmd|' /C calc'!A0", status=MessageStatus.FAILED, error_code=30007)
    make_conversation(make_campaign(organization), volunteer, ("elsewhere",))
    login(client, organizer)

    rows = read_csv(client, f"/campaigns/{campaign.id}/export/messages.csv")

    assert list(rows[0]) == list(exports.MESSAGE_COLUMNS)
    assert [row["direction"] for row in rows] == ["outbound", "inbound", "outbound"]
    assert rows[1]["body"] == "'+1 yes" and rows[1]["texter"] == ""
    assert rows[2]["body"] == "'=cmd|' /C calc'!A0"
    assert (rows[2]["status"], rows[2]["error_code"], rows[2]["texter"]) == (
        "failed",
        "30007",
        volunteer.name,
    )
    assert rows[0]["first_name"] == "Ana" and rows[0]["contact_id"] == str(contact.id)
    assert exports_audited(organization)[0].details["export"] == "messages"


def test_an_organizer_of_another_organization_cannot_export_the_campaign(
    client: FlaskClient, other_org_organizer: User, campaign: Campaign
) -> None:
    login(client, other_org_organizer)

    assert client.get(f"/campaigns/{campaign.id}/export/contacts.csv").status_code == 404
    assert client.get(f"/campaigns/{campaign.id}/export/messages.csv").status_code == 404


def test_downloading_an_imports_rejected_rows_is_audited(
    client: FlaskClient, organization: Organization, organizer: User, campaign: Campaign
) -> None:
    from gotv.models import ContactImport

    imp = ContactImport(
        organization_id=organization.id,
        campaign_id=campaign.id,
        filename="list.csv",
        upload_key="nonexistent.upload",
        headers=["cell"],
    )
    db.session.add(imp)
    db.session.flush()
    login(client, organizer)

    response = client.get(f"/campaigns/{campaign.id}/imports/{imp.id}/rejections.csv")

    assert response.get_data(as_text=True).splitlines() == ["line,reason,cell"]

    assert exports_audited(organization)[0].details["import_id"] == imp.id


def test_the_opt_out_export_streams_past_one_fetch(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    for n in range(exports.ROWS_PER_FETCH + 10):
        db.session.add(
            optouts.OptOut(organization_id=organization.id, cell=f"+1202{n:07d}", source="import")
        )
    db.session.flush()
    login(client, organizer)

    rows = read_csv(client, "/opt-outs/export.csv")

    assert len(rows) == exports.ROWS_PER_FETCH + 10


def test_a_million_contacts_export_in_bounded_memory(
    client: FlaskClient, organization: Organization, organizer: User, campaign: Campaign
) -> None:
    started = time.monotonic()
    insert_contacts(campaign, BIG_EXPORT_ROWS)
    inserted = time.monotonic()
    login(client, organizer)

    baseline = resident_bytes()
    peak = baseline
    response = client.get(f"/campaigns/{campaign.id}/export/contacts.csv", buffered=False)
    lines = 0
    for chunk in response.response:
        lines += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
        peak = max(peak, resident_bytes())
    response.close()
    exported = time.monotonic()

    print(
        f"\n{BIG_EXPORT_ROWS:,} contacts on {db.session.connection().dialect.name}: "
        f"insert {inserted - started:.1f}s, export {exported - inserted:.1f}s, "
        f"peak memory growth {(peak - baseline) / 2**20:.1f} MiB"
    )
    assert lines == BIG_EXPORT_ROWS + 1  # and the header
    assert peak - baseline < MEMORY_LIMIT


def test_everything_matching_is_reassigned_at_a_hundred_thousand_contacts(
    organization: Organization, organizer: User, volunteer: User, campaign: Campaign
) -> None:
    insert_contacts(campaign, 100_000, status=ContactStatus.TEXTED)
    started = time.monotonic()

    moved = review.reassign_matching(
        organization.id,
        {"campaign": str(campaign.id), "texter": "none"},
        volunteer.id,
        organizer.id,
    )

    print(f"\nreassigned {moved:,} in {time.monotonic() - started:.1f}s")
    assert moved == 100_000
    assert review.page(organization.id, {"texter": "none"}).conversations == []
    assert (
        len(review.page(organization.id, {"texter": str(volunteer.id)}).conversations)
        == review.PAGE_SIZE
    )
