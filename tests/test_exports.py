"""CSV exports: formula-safe cells, a campaign's contacts and messages, streamed and audited."""

from __future__ import annotations

import csv
import io
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from gotv.campaigns import content, review
from gotv.compliance import optouts
from gotv.db import db
from gotv.lists import exports, imports
from gotv.models import (
    AuditEvent,
    BlockedNumber,
    Campaign,
    Contact,
    ContactStatus,
    ContactTag,
    Direction,
    ImportMode,
    Message,
    MessageStatus,
    OptOut,
    Organization,
    SurveyAnswer,
    SurveyQuestion,
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

NEW_YORK = ZoneInfo("America/New_York")  # the organizations' zone until they choose theirs
# The big export: rows, and the most memory it may take on top of what was there, a small
# part of the file it streams (a buffered file, or the rows as objects, would take more).
BIG_EXPORT_ROWS = 400_000
MEMORY_LIMIT = 20 * 1024 * 1024


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

    assert list(rows[0]) == [*exports.CONTACT_COLUMNS, "tags", "path", "ward", "precinct"]
    ana, bo, cy = rows
    assert (ana["first_name"], ana["status"], ana["needs_reply"]) == ("Ana", "texted", "True")
    assert ana["texter"] == volunteer.name
    assert ana["last_reply"] == '\'=HYPERLINK("http://evil")'
    assert ana["last_reply_at"] != ""
    assert (ana["ward"], ana["precinct"]) == ("7", "'@A1")
    assert ana["opted_out_at"] == ""
    assert ana["cell"] == replied.cell.removeprefix("+1")  # a number to a spreadsheet and VAN
    assert bo["first_name"] == "'-Bo"
    assert opt_out is not None
    assert bo["opted_out_at"] == opt_out.created_at.astimezone(NEW_YORK).isoformat("T", "seconds")
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
        "path",
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
    assert by_name["Ana"]["path"] == "Will you vote?: Yes › Need a ride?: =No"
    assert by_name["Bo"]["path"] == ""


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


def test_a_campaign_with_no_questions_and_no_list_fields_exports_its_contacts(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    bare = make_campaign(organization)
    make_contact(bare, cell="+12125550260", first_name="Ana", custom_fields={})
    login(client, organizer)

    response = client.get(f"/campaigns/{bare.id}/export/contacts.csv")
    header, row = csv.reader(io.StringIO(response.get_data(as_text=True)))

    assert response.status_code == 200
    assert row[header.index("cell")] == "2125550260" and row[header.index("path")] == ""


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


def answer_everyone(campaign: Campaign, question: SurveyQuestion, by_parity: bool) -> None:
    """Every contact answers `question`: its first choice, or by the id's parity its first
    (even) and second (odd). One INSERT ... SELECT."""
    first, second = question.choices[0].id, question.choices[1].id
    choice = f"CASE WHEN id % 2 = 0 THEN {first} ELSE {second} END" if by_parity else str(first)
    db.session.connection().execute(
        text(
            "INSERT INTO survey_answer (contact_id, question_id, choice_id, answered_at)"
            f" SELECT id, :question, {choice}, :now FROM contact WHERE campaign_id = :campaign"
            + ("" if by_parity else " AND id % 2 = 0")
        ),
        {"question": question.id, "campaign": campaign.id, "now": datetime.now(UTC)},
    )


@pytest.mark.heavy
def test_a_big_campaign_exports_with_answers_in_memory_far_smaller_than_the_file(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    campaign: Campaign,
) -> None:
    started = time.monotonic()
    insert_contacts(campaign, BIG_EXPORT_ROWS)
    early = make_question(campaign, "Will you vote early?", ("Yes", "No"))
    ride = content.add_question(campaign, "Need a ride?", "Yes\nNo", organizer, early.choices[0])
    answer_everyone(campaign, early, by_parity=True)  # even ids: Yes
    answer_everyone(campaign, ride, by_parity=False)  # the Yes half: a ride, too
    inserted = time.monotonic()
    login(client, organizer)
    # What any first export allocates once (code paths, caches, the driver's buffers).
    read_csv(client, f"/campaigns/{make_campaign(organization).id}/export/contacts.csv")

    baseline = resident_bytes()
    peak = baseline
    response = client.get(f"/campaigns/{campaign.id}/export/contacts.csv", buffered=False)
    lines = size = 0
    first: list[str] = []
    for chunk in response.response:
        piece = chunk.decode() if isinstance(chunk, bytes) else chunk
        lines += piece.count("\n")
        size += len(piece)
        first = first or piece.splitlines()[:3]
        peak = max(peak, resident_bytes())
    response.close()
    exported = time.monotonic()

    print(
        f"\n{BIG_EXPORT_ROWS:,} contacts on {db.session.connection().dialect.name}: "
        f"insert {inserted - started:.1f}s, export {exported - inserted:.1f}s, "
        f"file {size / 2**20:.1f} MiB, peak memory growth {(peak - baseline) / 2**20:.1f} MiB"
    )
    assert lines == BIG_EXPORT_ROWS + 1  # and the header
    assert peak - baseline < MEMORY_LIMIT < size / 2
    header, *two = csv.reader(first)
    # (ids come from a sequence other tests have moved on PostgreSQL: parity, not position)
    by_parity = {int(row[header.index("id")]) % 2: row[-5:-2] for row in two}
    assert header[-4:-2] == ["survey: Will you vote early?", "survey: Need a ride?"]
    assert by_parity[1] == ["Will you vote early?: No", "No", ""]
    assert by_parity[0] == ["Will you vote early?: Yes › Need a ride?: Yes", "Yes", "Yes"]


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


# --- Exports that load back ----------------------------------------------------------------------

VAN_LIST = (
    "Voter File VANID,LastName,FirstName,CellPhone,State,ZIP5,State\n"
    "101,Peña,Ana,(212) 555-0201,NY,10001,New York\n"
    "102,Ortiz,Ben,(212) 555-0202,NY,10001,New York\n"
    "103,Lee,Cy,(212) 555-0203,NY,10001,New York\n"
)


@pytest.fixture
def van_campaign(
    app: Flask, organization: Organization, organizer: User, tmp_path: Path
) -> Campaign:
    """A campaign loaded from a VAN export (through the real import), two of it texted."""
    campaign = make_campaign(organization, name="VAN list")
    imp = imports.receive_upload(campaign, organizer, "van.csv", io.BytesIO(VAN_LIST.encode()))
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    db.session.commit()
    imports.run(imp.id)
    return db.session.get(Campaign, campaign.id) or campaign


def contact_named(campaign: Campaign, first_name: str) -> Contact:
    return db.session.scalars(
        select(Contact).where(Contact.campaign_id == campaign.id, Contact.first_name == first_name)
    ).one()


def test_the_contacts_export_gives_the_lists_columns_back_under_their_names_in_their_order(
    client: FlaskClient, organizer: User, van_campaign: Campaign
) -> None:
    login(client, organizer)

    response = client.get(f"/campaigns/{van_campaign.id}/export/contacts.csv")
    header, *rows = list(csv.reader(io.StringIO(response.text)))

    # The file's own columns first, as they were named and ordered (the second "State" was
    # numbered on upload); then ours, none repeating a name (ignoring case).
    assert header[:7] == [
        "Voter File VANID",
        "LastName",
        "FirstName",
        "CellPhone",
        "State",
        "ZIP5",
        "State (2)",
    ]
    assert header[7:11] == ["id", "status", "needs_reply", "texter"]  # one State: the list's
    assert len({name.casefold() for name in header}) == len(header)
    assert rows[0][:7] == ["101", "Peña", "Ana", "2125550201", "NY", "10001", "New York"]


def test_phone_numbers_are_numbers_and_formulas_stay_text(van_campaign: Campaign) -> None:
    assert exports.safe_cell(exports.phone_cell("+12125550201")) == "2125550201"
    assert exports.safe_cell(exports.phone_cell("+447700900123")) == "+447700900123"
    assert exports.safe_cell(exports.Phone("+1=cmd|' /C calc'!A0")) == "'+1=cmd|' /C calc'!A0"
    assert exports.safe_cell("+12125550201") == "'+12125550201"  # only phone columns pass


def test_times_are_iso_8601_in_the_organizations_zone_to_the_second(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    volunteer: User,
    campaign: Campaign,
) -> None:
    organization.time_zone = "America/Los_Angeles"
    contact = make_conversation(campaign, volunteer, ("Yes!",))
    db.session.flush()
    login(client, organizer)

    messages = read_csv(client, f"/campaigns/{campaign.id}/export/messages.csv")
    contacts = read_csv(client, f"/campaigns/{campaign.id}/export/contacts.csv")

    reply = db.session.scalars(
        select(Message).where(Message.contact_id == contact.id).order_by(Message.id.desc())
    ).first()
    assert reply is not None
    local = reply.created_at.astimezone(ZoneInfo("America/Los_Angeles"))
    assert messages[1]["created_at"] == local.isoformat(timespec="seconds")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[78]:00", messages[0]["created_at"])
    assert contacts[0]["last_reply_at"] == local.isoformat(timespec="seconds")
    assert messages[0]["cell"] == contact.cell.removeprefix("+1")


def test_the_van_export_has_each_texted_vanid_with_its_result_and_answers(
    client: FlaskClient, organizer: User, volunteer: User, van_campaign: Campaign
) -> None:
    question = make_question(van_campaign, "Will you vote early?", ("Yes", "No"))
    ana, ben = contact_named(van_campaign, "Ana"), contact_named(van_campaign, "Ben")
    for contact in (ana, ben):
        contact.status, contact.texter_id = ContactStatus.TEXTED, volunteer.id
        make_message(contact, is_initial=True, status=MessageStatus.DELIVERED)
    make_message(ana, direction=Direction.INBOUND, status=MessageStatus.RECEIVED, body="yes")
    content.record_answer(ana, question.id, question.choices[0].id, volunteer)
    optouts.record_opt_out(van_campaign.organization_id, ben.cell, "inbound_keyword")
    db.session.commit()
    login(client, organizer)

    rows = read_csv(client, f"/campaigns/{van_campaign.id}/export/van-survey-responses.csv")

    today = datetime.now(ZoneInfo("America/New_York")).date().isoformat()
    assert rows == [
        {
            "VANID": "101",
            "Phone": "2125550201",
            "DateCanvassed": today,
            "ContactType": "SMS Text",
            "Result": "Canvassed",
            "Will you vote early?": "Yes",
            "Path": "Will you vote early?: Yes",
        },
        {
            "VANID": "102",
            "Phone": "2125550202",
            "DateCanvassed": today,
            "ContactType": "SMS Text",
            "Result": "Refused",
            "Will you vote early?": "",
            "Path": "",
        },
    ]
    assert exports_audited(van_campaign.organization)[0].details["export"] == (
        "van_survey_responses"
    )


def test_the_van_do_not_text_list_has_the_opted_out_and_the_unreachable(
    client: FlaskClient, organizer: User, van_campaign: Campaign
) -> None:
    ana, cy = contact_named(van_campaign, "Ana"), contact_named(van_campaign, "Cy")
    optouts.record_opt_out(van_campaign.organization_id, ana.cell, "texter")
    db.session.add(
        BlockedNumber(
            organization_id=van_campaign.organization_id,
            cell=cy.cell,
            error_code=30006,
            reason="landline",
        )
    )
    db.session.commit()
    login(client, organizer)

    rows = read_csv(client, f"/campaigns/{van_campaign.id}/export/van-do-not-text.csv")

    assert [(r["VANID"], r["Phone"], r["Reason"]) for r in rows] == [
        ("101", "2125550201", "opted out"),
        ("103", "2125550203", "wrong number (landline)"),
    ]
    assert rows[0]["Date"].startswith(datetime.now(UTC).date().isoformat()[:4])


def test_a_campaign_without_a_vanid_column_says_so_instead_of_an_empty_file(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    response = client.get(
        f"/campaigns/{campaign.id}/export/van-survey-responses.csv", follow_redirects=True
    )

    assert "no VANID column" in response.text
    assert exports_audited(campaign.organization) == []
