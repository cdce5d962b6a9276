"""Voter-list imports: upload, sniffing, mapping, the all-or-nothing load job, progress, cancel."""

from __future__ import annotations

import csv
import io
import logging
import runpy
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from redis import Redis
from sqlalchemy import func, select

from gotv.compliance import numbers
from gotv.db import db
from gotv.edge import queue, storage
from gotv.lists import contacts, imports
from gotv.models import (
    Campaign,
    Contact,
    ContactImport,
    ContactStatus,
    ImportMode,
    ImportRejection,
    ImportStatus,
    Message,
    OptOut,
    User,
    utcnow,
)
from tests.conftest import run_jobs
from tests.factories import make_campaign, make_contact, make_org
from workers.imports import sweep_imports

ROOT = Path(__file__).resolve().parents[1]

VOTERS = "first_name,phone,zip\nAnn,602-555-0201,85001\nBob,602-555-0202,85001\n"


@pytest.fixture(autouse=True)
def upload_dir(app: Flask, tmp_path: Path) -> Iterator[Path]:
    original = app.config["UPLOAD_DIR"]
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    yield tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = original


@pytest.fixture
def campaign(organizer: User) -> Campaign:
    return make_campaign(organizer.organization)


def upload(
    campaign: Campaign, data: bytes | str, user: User | None = None, name: str = "list.csv"
) -> ContactImport:

    raw = data.encode() if isinstance(data, str) else data
    owner = user or db.session.scalars(select(User)).first()
    assert owner is not None
    return imports.receive_upload(campaign, owner, name, io.BytesIO(raw))


def stored_keys() -> set[str]:
    """Every key in the upload store (the tests' own store holds a few at most)."""
    return set(storage.uploads().saved_before(utcnow() + timedelta(days=1)))


def is_stored(imp: ContactImport) -> bool:
    """Whether the upload store still has the import's file."""
    try:
        storage.uploads().open(imp.upload_key).close()
    except FileNotFoundError:
        return False
    return True


def load(
    campaign: Campaign,
    data: bytes | str,
    mode: ImportMode = ImportMode.APPEND,
    exclude: list[int] | None = None,
    mapping: dict[str, str] | None = None,
) -> ContactImport:
    """Upload, start with the guessed mapping, commit and run the engine inline."""
    imp = upload(campaign, data)
    imports.start(imp, mapping or dict(imp.mapping), mode, exclude or [])
    db.session.commit()
    imports.run(imp.id)
    db.session.refresh(imp)
    return imp


def campaign_cells(campaign: Campaign) -> list[str]:
    return sorted(
        db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign.id))
    )


def reasons(imp: ContactImport) -> list[tuple[int, str]]:
    rows = db.session.scalars(
        select(ImportRejection).where(ImportRejection.import_id == imp.id).order_by("line")
    )
    return [(row.line, row.reason) for row in rows]


# --- Upload: encodings, delimiters, headers ---------------------------------------------------

NAMES = "first_name,cell\nJosé,212-555-0201\nZoë,212-555-0202\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (NAMES.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + NAMES.encode("utf-8"), "utf-8-sig"),
        (NAMES.encode("utf-16"), "utf-16"),
        (NAMES.encode("utf-16-le"), "utf-16-le"),
        (NAMES.encode("utf-16-be"), "utf-16-be"),
        (NAMES.encode("cp1252"), "cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16le-no-bom", "utf16be-no-bom", "cp1252"],
)
def test_each_encoding_is_detected_recorded_and_read(
    campaign: Campaign, data: bytes, encoding: str
) -> None:
    imp = load(campaign, data)

    assert imp.encoding == encoding
    assert imp.headers == ["first_name", "cell"]
    assert imp.status is ImportStatus.DONE, imp.error
    names = db.session.scalars(select(Contact.first_name).where(Contact.campaign_id == campaign.id))
    assert sorted(names) == ["José", "Zoë"]


def test_a_utf8_list_with_windows_1252_rows_appended_keeps_every_name(campaign: Campaign) -> None:
    """Read wholly as Windows-1252, each UTF-8 José became JosÃ©."""
    data = "first_name,cell\nJosé,212-555-0201\n".encode() + "Zoë,212-555-0202\n".encode("cp1252")

    imp = load(campaign, data)

    names = db.session.scalars(select(Contact.first_name).order_by(Contact.cell)).all()
    assert (imp.encoding, names) == ("cp1252", ["José", "Zoë"])


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|"])
def test_each_delimiter_is_detected(campaign: Campaign, delimiter: str) -> None:
    data = VOTERS.replace(",", delimiter)

    imp = load(campaign, data)

    assert imp.delimiter == delimiter
    assert campaign_cells(campaign) == ["+16025550201", "+16025550202"]


def test_a_semicolon_file_whose_header_quotes_a_comma_is_read(campaign: Campaign) -> None:
    """More commas than semicolons on line 1, but inside quotes: they do not delimit."""
    imp = load(campaign, '"Last, First";"Cell"\n"Lee, Ann";212-555-0299\n')

    assert (imp.delimiter, imp.headers) == (";", ["Last, First", "Cell"])
    assert campaign_cells(campaign) == ["+12125550299"]


def test_a_header_with_a_line_break_in_a_quoted_name_is_read(campaign: Campaign) -> None:
    """A spreadsheet's header cell wrapped with Alt+Enter: lines 1 and 2 are the header row."""
    imp = load(campaign, '"First\nName",Cell\nAnn,212-555-0299\nBo,call me\n')

    assert imp.headers == ["First Name", "Cell"]  # (a browser would post "First\r\nName")
    assert imp.mapping == {"first_name": "First Name", "cell": "Cell"}
    contact = db.session.scalars(select(Contact).where(Contact.campaign_id == campaign.id)).one()
    assert (contact.first_name, contact.cell) == ("Ann", "+12125550299")
    assert reasons(imp) == [(4, "not texted: not a phone number")]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "VANID,FirstName,LastName,CellPhone,Phone,ZIP5",
            {
                "first_name": "FirstName",
                "last_name": "LastName",
                "cell": "CellPhone",
                "zip": "ZIP5",
            },
        ),
        (
            "LALVOTERID,Voters_FirstName,Voters_LastName,VoterTelephones_CellPhoneFormatted,"
            "Residence_Addresses_Zip",
            {
                "first_name": "Voters_FirstName",
                "last_name": "Voters_LastName",
                "cell": "VoterTelephones_CellPhoneFormatted",
                "zip": "Residence_Addresses_Zip",
            },
        ),
        (
            "voterbase_id,first_name,last_name,tsmart_cell_phone,vb_phone,zip",
            {"first_name": "first_name", "last_name": "last_name", "cell": "tsmart_cell_phone"}
            | {"zip": "zip"},
        ),
        (
            "PDI ID,First Name,Last Name,Mobile Phone,Zip Code",
            {"first_name": "First Name", "last_name": "Last Name", "cell": "Mobile Phone"}
            | {"zip": "Zip Code"},
        ),
        (
            "vb.voterbase_id,vb.tsmart_first_name,vb.tsmart_last_name,vb.voterbase_phone,"
            "vb.voterbase_phone_wireless,vb.tsmart_zip",
            {"first_name": "vb.tsmart_first_name", "last_name": "vb.tsmart_last_name"}
            | {"cell": "vb.voterbase_phone_wireless", "zip": "vb.tsmart_zip"},
        ),
        (
            "Nombre,Apellidos,Teléfono,Teléfono Móvil,Código Postal",
            {"first_name": "Nombre", "last_name": "Apellidos", "cell": "Teléfono Móvil"}
            | {"zip": "Código Postal"},
        ),
        ("Name,Telephone,Mobile Number,Zip", {"cell": "Mobile Number", "zip": "Zip"}),
        ("name,phone,zip", {"cell": "phone", "zip": "zip"}),
    ],
    ids=["van", "l2", "targetsmart", "pdi", "targetsmart-prefixed", "spanish", "mobile", "plain"],
)
def test_each_header_style_is_mapped_and_the_rest_kept_as_custom_fields(
    campaign: Campaign, header: str, expected: dict[str, str]
) -> None:
    values = {"cell": "(212) 555-0299", "zip": "10001", "first_name": "Ann", "last_name": "Lee"}
    columns = header.split(",")
    by_header = {h: values[f] for f, h in expected.items()}
    row = ",".join(by_header.get(h, f"x{i}") for i, h in enumerate(columns))

    imp = load(campaign, f"{header}\n{row}\n")

    assert imp.mapping == expected
    contact = db.session.scalars(select(Contact).where(Contact.campaign_id == campaign.id)).one()
    assert contact.cell == "+12125550299"
    others = [h for h in columns if h not in expected.values()]
    assert contact.custom_fields == {
        contacts.custom_field_name(h): f"x{columns.index(h)}" for h in others
    }
    assert campaign.custom_field_names == sorted(contacts.custom_field_name(h) for h in others)


def test_every_column_is_kept_when_headers_share_a_merge_tag_or_have_no_letters(
    campaign: Campaign,
) -> None:
    """Precinct and PRECINCT (two lists pasted together), # and 電話: none of them is lost."""
    imp = load(campaign, "cell,Precinct,PRECINCT,#,電話,precinct_2\n212-555-0299,a,b,c,d,e\n")

    contact = db.session.scalars(select(Contact).where(Contact.campaign_id == campaign.id)).one()
    assert contact.custom_fields == {
        "precinct": "a",
        "precinct_2": "b",
        "column_4": "c",
        "column_5": "d",
        "precinct_2_2": "e",
    }
    assert [column.get("custom") for column in imports.file_columns(imp)][1:] == [
        "precinct",
        "precinct_2",
        "column_4",
        "column_5",
        "precinct_2_2",
    ]


def test_a_file_without_a_header_row_is_unreadable_and_not_kept(campaign: Campaign) -> None:
    before = stored_keys()

    with pytest.raises(imports.UnreadableList):
        upload(campaign, b"\n\n")

    assert stored_keys() == before


def test_a_file_with_headers_but_no_phone_column_uploads_with_an_empty_cell_mapping(
    campaign: Campaign,
) -> None:
    imp = upload(campaign, "a,b\n1,2\n")

    assert "cell" not in imp.mapping
    assert imports.preview_rows(imp) == [["1", "2"]]
    assert imp.status is ImportStatus.UPLOADED


def test_crlf_and_quoted_newlines_are_read(campaign: Campaign) -> None:
    data = 'cell,note\r\n212-555-0201,"two\r\nlines"\r\n212-555-0202,plain\r\n'

    imp = load(campaign, data)

    assert imp.loaded == 2
    notes = db.session.scalars(
        select(Contact.custom_fields).where(Contact.campaign_id == campaign.id)
    )
    assert sorted(n["note"] for n in notes) == ["plain", "two\r\nlines"]


def test_preview_rows_returns_the_first_rows(campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)

    assert imports.preview_rows(imp, limit=1) == [["Ann", "602-555-0201", "85001"]]


# --- Starting ---------------------------------------------------------------------------------


def test_start_needs_a_cell_column(campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)

    with pytest.raises(ValueError, match="cell phone"):
        imports.start(imp, {"zip": "zip"}, ImportMode.APPEND, [])


def test_start_refuses_a_column_used_twice_or_missing(campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)

    with pytest.raises(ValueError, match="only one field"):
        imports.start(imp, {"cell": "phone", "zip": "phone"}, ImportMode.APPEND, [])
    with pytest.raises(ValueError, match="no column"):
        imports.start(imp, {"cell": "mobile"}, ImportMode.APPEND, [])


def test_start_refuses_to_exclude_another_organizations_campaign(campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)
    elsewhere = make_campaign(make_org())

    with pytest.raises(ValueError, match="do not exist"):
        imports.start(imp, {"cell": "phone"}, ImportMode.APPEND, [elsewhere.id])


def test_start_queues_the_import_once(campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)
    imports.start(imp, {"cell": "phone"}, ImportMode.REPLACE, [])

    assert (imp.status, imp.mode, imp.mapping) == (
        ImportStatus.QUEUED,
        ImportMode.REPLACE,
        {"cell": "phone"},
    )
    with pytest.raises(ValueError, match="already"):
        imports.start(imp, {"cell": "phone"}, ImportMode.APPEND, [])


# --- Normalizing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "(212) 555-0299",
        "212.555.0299",
        "212-555-0299",
        "2125550299",
        "+1 212 555 0299",
        "1-212-555-0299",
        "1 (212) 555-0299",
        "212-555-0299 x123",
        "212-555-0299 ext. 9",
        "2.125550299E+09",  # Excel's scientific notation, every digit kept
        "1.2125550299e+10",
        "2125550299.0",  # a float column (pandas, with a blank in the column)
    ],
)
def test_every_common_phone_format_loads_as_e164(campaign: Campaign, raw: str) -> None:
    load(campaign, f'cell\n"{raw}"\n')

    assert campaign_cells(campaign) == ["+12125550299"]


def test_bad_numbers_are_rejected_with_the_policys_reasons(campaign: Campaign) -> None:
    data = "cell\n212-555-0201\n555-0201\n800-555-0201\nnot a number\n\n,\n"

    imp = load(campaign, data)

    assert (imp.rows_read, imp.loaded, imp.rejected) == (4, 1, 3)
    assert reasons(imp) == [
        (3, "not texted: not a valid phone number"),
        (4, "not texted: a toll-free number"),
        (5, "not texted: not a phone number"),
    ]


def test_a_number_a_spreadsheet_rounded_is_rejected_never_guessed(campaign: Campaign) -> None:
    """2.12555E+09 may have been 2125550299 or 2125551234: 2125550000 would text someone else."""
    imp = load(campaign, "cell\n2.12555E+09\n2.125550299E+09\n")

    assert campaign_cells(campaign) == ["+12125550299"]
    assert reasons(imp) == [(2, "not texted: " + numbers.Reason.ROUNDED.explanation)]


def test_only_textable_us_numbers_are_loaded_and_each_rejection_names_its_reason(
    campaign: Campaign,
) -> None:
    data = (
        "cell\n"
        "+44 7911 123456\n+33 6 12 34 56 78\n+52 55 1234 5678\n+44 20 7123 4567\n"
        "+1 416 555 0201\n+1 876 555 0201\n+1 809 555 0201\n+1 242 359 1234\n"
        "212-555-0150\n500-555-0201\n900-555-0201\n787-555-0201\n(212) 555-0201\n"
    )

    imp = load(campaign, data)

    assert campaign_cells(campaign) == ["+12125550201"]
    assert [reason for _, reason in reasons(imp)] == [
        "not texted: " + numbers.Reason(code).explanation
        for code in (
            *["foreign"] * 4,
            "canada",
            *["caribbean"] * 3,
            "fictional",
            "non_geographic",
            "premium_rate",
            "us_territory",
        )
    ]


def test_territory_numbers_load_when_the_organization_texts_the_territories(
    campaign: Campaign,
) -> None:
    campaign.organization.texts_us_territories = True

    load(campaign, "cell\n787-555-0201\n+1 340 555 0202\n")

    assert campaign_cells(campaign) == ["+13405550202", "+17875550201"]


def test_digits_of_other_scripts_are_stored_in_ascii_so_an_opt_out_matches_them(
    campaign: Campaign, organizer: User
) -> None:
    db.session.add(
        OptOut(organization_id=organizer.organization_id, cell="+12024561111", source="x")
    )
    db.session.flush()
    data = "cell\n２０２４５６１１１１\n٢٠٢٤٥٦١١١٢\n２０２４５６１１１\n(२०२) ४५६-१११३\n"

    imp = load(campaign, data)

    assert campaign_cells(campaign) == ["+12024561112", "+12024561113"]
    assert reasons(imp) == [(2, "opted out"), (4, "not texted: not a valid phone number")]


def test_zips_are_repaired_and_located_with_the_area_code_as_fallback(campaign: Campaign) -> None:
    data = (
        "cell,zip,first_name,last_name\n212-555-0201,2134,MARIA,de la CRUZ\n305-555-0202,,ann,lee\n"
    )

    load(campaign, data)

    rows = db.session.execute(
        select(
            Contact.cell,
            Contact.zip,
            Contact.state,
            Contact.rule_states,
            Contact.time_zones,
            Contact.first_name,
        )
        .where(Contact.campaign_id == campaign.id)
        .order_by(Contact.cell)
    ).all()
    assert [tuple(row) for row in rows] == [
        ("+12125550201", "02134", "MA", "MA NY", "America/New_York", "Maria"),
        ("+13055550202", "", "", "FL", "America/New_York", "Ann"),
    ]


# --- Dedupe, suppression, exclusion, replace ------------------------------------------------


def test_a_row_with_more_values_than_columns_is_rejected_not_loaded_shifted(
    campaign: Campaign,
) -> None:
    """An unquoted comma in a name put the ZIP past the last column: the row is ambiguous.
    Empty values past it (a trailing comma) change nothing."""
    imp = load(campaign, "cell,name,zip\n212-555-0201,Lee, Ann,10001\n212-555-0202,Bo,10002,,\n")

    assert campaign_cells(campaign) == ["+12125550202"]
    assert reasons(imp) == [(2, "4 values for 3 columns: quote any value that holds the delimiter")]


def test_duplicates_in_the_file_and_in_the_campaign_are_not_loaded(campaign: Campaign) -> None:
    make_contact(campaign, cell="+16025550202")

    imp = load(campaign, VOTERS + "Ann again,(602) 555-0201,85001\n")

    assert (imp.loaded, imp.duplicates) == (1, 2)
    assert reasons(imp) == [(3, "already in campaign"), (4, "duplicate in file")]


def test_numbers_on_the_organizations_opt_out_list_are_filtered(
    campaign: Campaign, organizer: User
) -> None:
    db.session.add(
        OptOut(organization_id=organizer.organization_id, cell="+16025550202", source="x")
    )
    db.session.add(OptOut(organization_id=make_org().id, cell="+16025550201", source="x"))
    db.session.flush()

    imp = load(campaign, VOTERS)

    assert (imp.loaded, imp.opted_out) == (1, 1)
    assert campaign_cells(campaign) == ["+16025550201"]
    assert reasons(imp) == [(3, "opted out")]


def test_numbers_in_an_excluded_campaign_are_filtered(campaign: Campaign, organizer: User) -> None:
    earlier = make_campaign(organizer.organization)
    make_contact(earlier, cell="+16025550201")

    imp = load(campaign, VOTERS, exclude=[earlier.id])

    assert (imp.loaded, imp.excluded) == (1, 1)
    assert reasons(imp) == [(2, "in an excluded campaign")]


def test_uploading_the_same_list_again_loads_nothing_new(campaign: Campaign) -> None:
    load(campaign, VOTERS)

    again = load(campaign, VOTERS)

    assert (again.loaded, again.duplicates) == (0, 2)
    assert campaign_cells(campaign) == ["+16025550201", "+16025550202"]


def test_append_keeps_the_campaigns_contacts(campaign: Campaign) -> None:
    make_contact(campaign, cell="+12125550200")

    load(campaign, VOTERS)

    assert campaign_cells(campaign) == ["+12125550200", "+16025550201", "+16025550202"]


def test_replace_drops_untexted_contacts_but_keeps_texted_ones(campaign: Campaign) -> None:
    make_contact(campaign, cell="+12125550200")
    texted = make_contact(campaign, cell="+16025550201", status=ContactStatus.TEXTED)
    db.session.add(Message.queued_to(texted, "hi"))
    db.session.flush()

    imp = load(campaign, VOTERS, mode=ImportMode.REPLACE)

    assert campaign_cells(campaign) == ["+16025550201", "+16025550202"]
    assert reasons(imp) == [(2, "already in campaign")]


# --- Rejections CSV ---------------------------------------------------------------------------


def test_the_rejections_csv_has_line_reason_and_the_original_row_formula_safe(
    campaign: Campaign,
) -> None:
    imp = load(campaign, 'name,cell\n=HYPERLINK("x"),=1+2\nBob,602-555-0201\nBob2,602-555-0201\n')

    rows = list(csv.reader(io.StringIO("".join(imports.rejections_csv(imp)))))

    assert rows == [
        ["line", "reason", "name", "cell"],
        ["2", "not texted: not a phone number", '\'=HYPERLINK("x")', "'=1+2"],
        ["4", "duplicate in file", "Bob2", "602-555-0201"],
    ]


# --- All or nothing: failures and cancels -----------------------------------------------------


def count_contacts(campaign: Campaign) -> int:
    return (
        db.session.scalar(
            select(func.count()).select_from(Contact).where(Contact.campaign_id == campaign.id)
        )
        or 0
    )


def test_a_cancelled_queued_import_never_runs(campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    imports.request_cancel(imp)
    db.session.commit()

    imports.run(imp.id)

    assert imp.status is ImportStatus.CANCELLED
    assert count_contacts(campaign) == 0


def test_a_cancel_while_running_leaves_the_campaign_untouched(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_contact(campaign, cell="+12125550200")
    monkeypatch.setattr(imports, "CHUNK_ROWS", 2)
    imp = upload(campaign, VOTERS + "Cy,602-555-0203,85001\nDi,602-555-0204,85001\n")
    imports.start(imp, dict(imp.mapping), ImportMode.REPLACE, [])
    db.session.commit()
    queue.redis().set(imports.cancel_key(imp.id), "1")

    imports.run(imp.id)

    db.session.refresh(imp)
    assert imp.status is ImportStatus.CANCELLED
    assert campaign_cells(campaign) == ["+12125550200"]
    assert reasons(imp) == []


def test_a_failing_load_leaves_the_campaign_untouched_and_the_import_failed(
    campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_contact(campaign, cell="+12125550200")
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
    calls = []

    def boom(self: imports.Loader, bytes_read: int) -> None:
        calls.append(bytes_read)
        if len(calls) == 2:
            raise RuntimeError("disk full")
        original(self, bytes_read)

    original = imports.Loader.flush
    monkeypatch.setattr(imports.Loader, "flush", boom)

    imp = load(campaign, VOTERS, mode=ImportMode.REPLACE)

    assert imp.status is ImportStatus.FAILED
    assert "disk full" in imp.error
    assert campaign_cells(campaign) == ["+12125550200"]
    assert reasons(imp) == []


def test_a_missing_file_fails_the_import_with_a_message(campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    db.session.commit()
    storage.uploads().delete(imp.upload_key)

    imports.run(imp.id)

    db.session.refresh(imp)
    assert imp.status is ImportStatus.FAILED
    assert "upload the list again" in imp.error
    assert imports.progress(imp)["finished"] is True


# --- Progress and the real job -----------------------------------------------------------------


def test_progress_comes_from_redis_while_running_and_from_the_row_after(
    campaign: Campaign,
) -> None:
    imp = upload(campaign, VOTERS)
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    imp.status = ImportStatus.RUNNING
    counts = dict.fromkeys(imports.COUNTERS, 0) | {"rows_read": 5, "loaded": 4, "rejected": 1}
    counts["bytes_read"] = imp.file_size // 2

    imports.report(imp.id, counts)

    live = imports.progress(imp)
    assert (live["rows_read"], live["loaded"], live["rejected"]) == (5, 4, 1)
    assert live["percent"] == counts["bytes_read"] * 100 // imp.file_size
    assert live["finished"] is False
    assert queue.redis().ttl(imports.progress_key(imp.id)) > 3600
    imp.status = ImportStatus.DONE
    assert imports.progress(imp)["rows_read"] == 0  # the row's numbers once finished


def test_an_import_without_redis_loads_everything_and_says_so_once(
    app: Flask,
    campaign: Campaign,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(imports, "CHUNK_ROWS", 1)
    # Made as the app makes its own (gotv.edge.queue), on a port where nothing listens.
    monkeypatch.setitem(app.extensions, "gotv.redis", Redis.from_url("redis://127.0.0.1:1/0"))
    voters = VOTERS + "Cy,602-555-0203,85001\nDi,602-555-0204,85001\n"

    imp = load(campaign, voters)

    assert imp.status is ImportStatus.DONE and count_contacts(campaign) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"redis unavailable; import {imp.id} progress not reported"]


def test_the_import_runs_through_the_real_rq_job(app: Flask, campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    db.session.commit()
    assert queue.enqueue_import(imp.id)

    run_jobs(app)

    db.session.refresh(imp)
    assert imports.progress(imp) == {
        "rows_read": 2,
        "loaded": 2,
        "rejected": 0,
        "duplicates": 0,
        "opted_out": 0,
        "excluded": 0,
        "recent": 0,
        "status": "done",
        "percent": 100,
        "error": "",
        "finished": True,
    }
    assert campaign_cells(campaign) == ["+16025550201", "+16025550202"]
    assert not is_stored(imp)


def test_quotes_backslashes_tabs_and_line_breaks_in_values_survive_the_load(
    campaign: Campaign,
) -> None:
    data = 'cell,note,first_name\n212-555-0201,"say ""hi"" \\ bye",Ann\n212-555-0202,"a\tb",Bo\n'

    load(campaign, data)

    notes = db.session.execute(
        select(Contact.first_name, Contact.custom_fields)
        .where(Contact.campaign_id == campaign.id)
        .order_by(Contact.cell)
    ).all()
    assert [tuple(row) for row in notes] == [
        ("Ann", {"note": 'say "hi" \\ bye'}),
        ("Bo", {"note": "a\tb"}),
    ]


def test_the_shipped_zip_table_matches_the_zipcodes_package() -> None:
    with contacts.ZIP_TABLE.open(encoding="utf-8", newline="") as handle:
        shipped = list(csv.reader(handle))[1:]

    assert shipped == runpy.run_path(str(ROOT / "scripts/zip_table.py"))["zipcodes_rows"]()


def test_a_second_job_for_the_same_import_does_nothing(app: Flask, campaign: Campaign) -> None:
    imp = upload(campaign, VOTERS)
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    db.session.commit()

    imports.run(imp.id)
    imports.run(imp.id)

    db.session.refresh(imp)
    assert imp.status == ImportStatus.DONE and imp.loaded == 2


# --- Lost jobs -------------------------------------------------------------------------------


def queued_import(campaign: Campaign) -> ContactImport:
    imp = upload(campaign, VOTERS)
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    db.session.commit()
    return imp


def test_a_queued_import_whose_job_redis_lost_is_enqueued_again_and_runs(
    app: Flask, campaign: Campaign
) -> None:
    imp = queued_import(campaign)  # committed, but its job never reached Redis

    assert sweep_imports() == 1
    run_jobs(app)

    db.session.refresh(imp)
    assert imp.status == ImportStatus.DONE


def test_a_queued_import_whose_job_is_waiting_is_left_alone(campaign: Campaign) -> None:
    imp = queued_import(campaign)
    assert queue.enqueue_import(imp.id)

    assert sweep_imports() == 0
