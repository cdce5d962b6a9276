"""Hostile voter lists: Hypothesis writes malformed CSVs and the real import path reads them.

Every generated file goes through what an upload goes through (receive_upload, the mapping
screen's preview, start, the import job's run, the rejections download) and must come out with
no exception and every data row accounted for: loaded, or kept as a rejection with its reason.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from gotv.db import db
from gotv.edge import storage
from gotv.lists import imports
from gotv.lists.contacts import UnreadableList
from gotv.models import Contact, ContactImport, ImportMode, ImportStatus, OptOut, User, utcnow
from tests.factories import make_campaign

FUZZ = settings(
    max_examples=60,
    deadline=None,
    # The fixtures (app, organizer, upload directory) are the same for every example on
    # purpose: each example makes its own campaign, so none sees another's contacts.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
OPTED_OUT = "+16025550209"

phones = st.sampled_from(
    [
        "602-555-0201",
        "(602) 555-0202",
        "+1 602 555 0203",
        "6025550204",
        "602.555.0209",
        "555",
        "1e10",
        "-6025550205",
        "NaN",
        "=1+2",
        "+44 20 7946 0958",
        "0000000000",
        "9" * 40,
        "",
    ]
)
hostile = st.sampled_from(
    [
        '=HYPERLINK("http://x")',
        "+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "-2+3",
        "\x00",
        "a\x00b",
        '"',
        'say "hi"',
        "line\nbreak",
        "cr\rhere",
        "\ufeff",
        "José Zoë",
        "🗳️",
        "\\N",
        "\t",
        " ",
        "x" * 3000,
    ]
)
values = st.one_of(phones, hostile, st.text(max_size=12))
rows = st.lists(st.lists(values, max_size=6), max_size=25)
encodings = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252"])
delimiters = st.sampled_from([",", "\t", ";", "|"])


@pytest.fixture
def upload_dir(app: Flask, tmp_path: Path) -> Iterator[Path]:
    original = app.config["UPLOAD_DIR"]
    app.config["UPLOAD_DIR"] = str(tmp_path / "uploads")
    yield tmp_path / "uploads"
    app.config["UPLOAD_DIR"] = original


def write_csv(body: list[list[str]], delimiter: str, quote_all: bool, newline: str) -> str:
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=delimiter,
        lineterminator=newline,
        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL,
    )
    writer.writerow(["first_name", "cell", "zip"])
    writer.writerows(body)
    return out.getvalue()


def import_all_the_way(
    organizer: User, upload_dir: Path, data: bytes, refused_is_none: bool = True
) -> ContactImport | None:
    """Upload, preview, start and run one list as the pages and the job do; None: unreadable
    (unless told to let the refusal through)."""
    campaign = make_campaign(organizer.organization)
    try:
        imp = imports.receive_upload(campaign, organizer, "list.csv", io.BytesIO(data))
    except UnreadableList:
        if not refused_is_none:
            raise
        return None
    imports.preview_rows(imp)
    mapping = dict(imp.mapping) if imp.mapping.get("cell") else {"cell": imp.headers[0]}
    imports.start(imp, mapping, ImportMode.APPEND, [])
    db.session.commit()
    imports.run(imp.id)
    db.session.refresh(imp)
    return imp


def assert_every_row_accounted_for(imp: ContactImport) -> None:
    assert imp.status in (ImportStatus.DONE, ImportStatus.FAILED)
    if imp.status is ImportStatus.FAILED:
        assert imp.error and "Traceback" not in imp.error
        assert contacts_in(imp) == 0  # all or nothing
        return
    not_loaded = imp.rejected + imp.duplicates + imp.opted_out + imp.excluded
    assert imp.loaded + not_loaded == imp.rows_read
    assert contacts_in(imp) == imp.loaded
    downloaded = list(csv.reader(io.StringIO("".join(imports.rejections_csv(imp)))))
    assert downloaded[0][:2] == ["line", "reason"]
    assert len(downloaded) - 1 == not_loaded


def contacts_in(imp: ContactImport) -> int:
    count = select(func.count()).select_from(Contact).where(Contact.campaign_id == imp.campaign_id)
    return db.session.scalar(count) or 0


@pytest.fixture
def organizer_with_an_opt_out(organizer: User) -> User:
    db.session.add(
        OptOut(organization_id=organizer.organization_id, cell=OPTED_OUT, source="admin")
    )
    db.session.flush()
    return organizer


@FUZZ
@given(
    body=rows,
    encoding=encodings,
    delimiter=delimiters,
    quote_all=st.booleans(),
    newline=st.sampled_from(["\n", "\r\n"]),
)
def test_a_well_quoted_list_in_any_encoding_has_every_row_loaded_or_rejected(
    organizer_with_an_opt_out: User,
    upload_dir: Path,
    body: list[list[str]],
    encoding: str,
    delimiter: str,
    quote_all: bool,
    newline: str,
) -> None:
    text = write_csv(body, delimiter, quote_all, newline)
    imp = import_all_the_way(
        organizer_with_an_opt_out, upload_dir, text.encode(encoding, errors="replace")
    )

    assert imp is not None
    assert imp.status is ImportStatus.DONE, imp.error
    assert_every_row_accounted_for(imp)
    if imp.encoding.replace("-sig", "").startswith(encoding[:6]):  # read as it was written
        assert imp.rows_read == rows_in(text, delimiter)


def rows_in(text: str, delimiter: str) -> int:
    """Non-blank data rows as the csv module reads them (a bare CR ends a row, as in Excel)."""
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))[1:]
    return sum(1 for row in rows if any(value.strip() for value in row))


@FUZZ
@given(
    head=st.sampled_from(["first_name,cell,zip\n", "cell\n", "\ufeffcell;zip\r\n", "a\tb\n"]),
    junk=st.binary(max_size=2000),
)
def test_a_list_of_random_bytes_is_refused_or_accounted_for_never_an_exception(
    organizer_with_an_opt_out: User, upload_dir: Path, head: str, junk: bytes
) -> None:
    before = stored_uploads()
    imp = import_all_the_way(organizer_with_an_opt_out, upload_dir, head.encode() + junk)

    if imp is not None:
        assert_every_row_accounted_for(imp)
    assert stored_uploads() <= before  # no upload left behind once it ran


def stored_uploads() -> set[str]:
    """Every upload in the store (the folder on SQLite, PostgreSQL's tables on PostgreSQL)."""
    return set(storage.uploads().saved_before(utcnow() + timedelta(days=1)))


def test_a_value_over_the_size_limit_rejects_its_record_and_the_rest_loads(
    organizer: User, upload_dir: Path
) -> None:
    # It failed the whole import ("field larger than field limit").
    huge = "x" * (csv.field_size_limit() + 1)
    data = f"name,cell\n{huge},602-555-0201\nAnn,602-555-0202\n".encode()

    imp = import_all_the_way(organizer, upload_dir, data)

    assert imp is not None and imp.status is ImportStatus.DONE
    assert (imp.rows_read, imp.loaded, imp.rejected) == (2, 1, 1)
    assert rejections(imp) == [["2", "a value longer than 128 KB", "x" * 200]]
    assert_every_row_accounted_for(imp)


def test_an_unclosed_quote_rejects_its_line_and_the_records_after_it_load(
    organizer: User, upload_dir: Path
) -> None:
    # It swallowed the next records into one first name: 5 records counted as 1 loaded.
    data = (
        b"first_name,cell,zip\n"
        b'"Maria,602-555-0201,85001\n'
        b"Ana,602-555-0202,85001\n"
        b"Bo,602-555-0203,85001\n"
        b"Cy,602-555-0204,85001\n"
        b"Di,602-555-0205,85001\n"
    )

    imp = import_all_the_way(organizer, upload_dir, data)

    assert imp is not None and imp.status is ImportStatus.DONE
    assert (imp.rows_read, imp.loaded, imp.rejected) == (5, 4, 1)
    line, reason, _text = rejections(imp)[0]
    assert (line, reason) == ("2", "a quoted value is never closed: the file ends inside it")
    assert_every_row_accounted_for(imp)


def test_a_stray_quote_rejects_its_line_only(organizer: User, upload_dir: Path) -> None:
    data = b'first_name,cell\nAn"n,602-555-0201\n"Bo"b,602-555-0202\nCy,602-555-0203\n'

    imp = import_all_the_way(organizer, upload_dir, data)

    assert imp is not None and (imp.loaded, imp.rejected) == (2, 1)
    assert rejections(imp)[0][0] == "3"
    assert "quote" in rejections(imp)[0][1]


def test_a_header_over_the_limit_is_refused_with_a_clear_message(
    organizer: User, upload_dir: Path
) -> None:
    # 10,000 columns of 30 characters: the header was cut at 64 KB and columns silently lost.
    header = ",".join(f"column number {n:05d} of many" for n in range(10_000))
    data = f"{header},cell\nx,602-555-0201\n".encode()

    with pytest.raises(UnreadableList, match="header row \\(line 1\\) is longer than 256 KB"):
        import_all_the_way(organizer, upload_dir, data, refused_is_none=False)


def test_more_columns_than_gotv_reads_are_refused_with_a_clear_message(
    organizer: User, upload_dir: Path
) -> None:
    header = ",".join(f"c{n}" for n in range(1500))
    data = f"{header},cell\nx,602-555-0201\n".encode()

    with pytest.raises(UnreadableList, match="1,501 columns; gotv reads at most 1,000"):
        import_all_the_way(organizer, upload_dir, data, refused_is_none=False)


def test_the_mapping_preview_of_a_hostile_file_stays_small(
    organizer: User, upload_dir: Path
) -> None:
    # A 5 MB line of 5,000,000 fields made a 44 MB page and took 700 MB of a web process.
    campaign = make_campaign(organizer.organization)
    data = b"first_name,cell,zip\n" + b"," * 5_000_000 + b"\n" + (b"y" * 5000 + b",1,2\n") * 3
    imp = imports.receive_upload(campaign, organizer, "l.csv", io.BytesIO(data))

    preview = imports.preview_rows(imp)

    assert preview == [["y" * imports.PREVIEW_VALUE, "1", "2"]] * 3


def rejections(imp: ContactImport) -> list[list[str]]:
    """The rejections download's rows after its header: line, reason, the record's values."""
    return list(csv.reader(io.StringIO("".join(imports.rejections_csv(imp)))))[1:]


def test_a_row_whose_only_values_lie_past_the_headers_is_rejected_not_dropped(
    organizer: User, upload_dir: Path
) -> None:
    # Found by the fuzzing above: the row was cut to the header's width, looked blank, and
    # vanished without a count or a rejection.
    data = b"first_name,cell,zip\n,,,602-555-0201\nAnn,602-555-0202,85001\n"

    imp = import_all_the_way(organizer, upload_dir, data)

    assert imp is not None
    assert (imp.rows_read, imp.loaded, imp.rejected) == (2, 1, 1)
    assert_every_row_accounted_for(imp)
