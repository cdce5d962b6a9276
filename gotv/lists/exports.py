"""CSV files we hand to people: streamed, safe to open in a spreadsheet, and made to load back.

Every cell goes through `safe_cell`. Phone numbers are written as numbers a spreadsheet and
VAN read (`phone_cell`), times as ISO 8601 in the organization's zone, to the second
(`time_cell`), the list's columns under their own names in their own order. Big exports (a
campaign's million contacts or messages) are read with a server-side cursor in chunks of Core
rows (no ORM object per row) and written out in chunks of about CHUNK_BYTES, so memory stays
flat whatever the row count.
"""

from __future__ import annotations

import csv
import io
import operator
import re
import string
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, and_, exists, func, literal, or_, select

from gotv.campaigns import content
from gotv.compliance import optouts
from gotv.db import db
from gotv.models import (
    BlockedNumber,
    Campaign,
    Contact,
    ContactStatus,
    ContactTag,
    Direction,
    Message,
    OptOut,
    SurveyAnswer,
    SurveyChoice,
    SurveyQuestion,
    Tag,
    User,
)
from gotv.people import zones

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets
# (OWASP's list, plus LF). Spreadsheets also skip leading spaces before a formula, so a cell
# whose first non-blank character is one of these is made safe too.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
TRIGGER_CHARACTERS = frozenset(FORMULA_TRIGGERS)
PLAIN_STARTS = frozenset(string.ascii_letters + string.digits)
FORMULA_STARTS = frozenset("=+-@")
ROWS_PER_FETCH = 5000  # rows a server-side cursor hands over at a time
CHUNK_BYTES = 64 * 1024  # about how much CSV each yield of a streamed response carries


def safe_cell(value: object) -> str:
    """The value as text that a spreadsheet shows as text, never runs as a formula (OWASP).

    A `Phone` of digits (and a leading "+") stays as it is, for the spreadsheet to read the
    number: with no operator or name after the sign, there is no formula to run.
    """
    if value is None:
        return ""
    if type(value) is Phone and PHONE.fullmatch(value):
        return str(value)
    text = value if type(value) is str else str(value)
    if not text or text[0] in PLAIN_STARTS:  # the fast path for nearly every cell
        return text
    if text[0] in TRIGGER_CHARACTERS or (text[0].isspace() and text.lstrip()[:1] in FORMULA_STARTS):
        return "'" + text
    return text


def csv_lines(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Yield a CSV file line by line, every cell made formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in ([header], rows):
        for values in row:
            writer.writerow([safe_cell(value) for value in values])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()


def csv_chunks(
    header: Sequence[str], rows: Iterable[Iterable[object]], chunk_bytes: int = CHUNK_BYTES
) -> Iterator[str]:
    """Yield a CSV file in pieces of about `chunk_bytes`, every cell made formula-safe.

    Fewer, bigger pieces than `csv_lines`: a million one-line writes to a socket cost more
    than the CSV itself.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(map(safe_cell, header))
    for values in rows:
        writer.writerow(map(safe_cell, values))
        if buffer.tell() >= chunk_bytes:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def stream(statement: Executable, rows_per_fetch: int = ROWS_PER_FETCH) -> Iterator[Any]:
    """The statement's Core rows, fetched `rows_per_fetch` at a time from a server-side cursor.

    Iterate it to the end (or close it) inside the transaction that started it.
    """
    # Core rows on the session's connection: the ORM's per-row loading is not needed here.
    result = db.session.connection().execute(
        statement.execution_options(stream_results=True, yield_per=rows_per_fetch)
    )
    for partition in result.partitions():
        yield from partition


# --- Cells that load back: phone numbers and times -----------------------------------------------

PHONE = re.compile(r"\+?[0-9]{7,15}")


class Phone(str):
    """A phone number cell: written as a spreadsheet and VAN read a number (`phone_cell`)."""

    __slots__ = ()


def phone_cell(cell: str | None) -> Phone | str:
    """An E.164 number as a spreadsheet, VAN and our own upload read it back: the 10 digits
    of a North American number ("2125550100"), else the number with its "+". Only digits (and
    that one "+") are written unquoted: anything else goes through `safe_cell`."""
    if not cell:
        return ""
    if len(cell) == 12 and cell.startswith("+1"):
        cell = cell[2:]
    return Phone(cell) if PHONE.fullmatch(cell) else cell


def time_cell(zone: ZoneInfo) -> Callable[[datetime | str | None], str]:
    """A function writing a time as ISO 8601 in `zone`, to the second ("2026-11-03T11:00:05
    -05:00" without the space): what a spreadsheet, VAN and people read alike."""

    def write(moment: datetime | str | None) -> str:
        if moment is None:
            return ""
        if isinstance(moment, str):  # SQLite, through a subquery that skips the column type
            moment = datetime.fromisoformat(moment)
        return zones.iso(moment, zone)

    return write


# --- What organizers can download -------------------------------------------------------------

# Ours, after the list's own columns (or, for a campaign without a list layout, with the
# standard fields first, as gotv stores them).
STANDARD_COLUMNS = ("first_name", "last_name", "cell", "zip")
CONTACT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "cell",
    "zip",
    "state",
    "status",
    "needs_reply",
    "texter",
    "opted_out_at",
    "last_reply_at",
    "last_reply",
)
GOTV_COLUMNS = tuple(name for name in CONTACT_COLUMNS if name not in ("id", *STANDARD_COLUMNS))
MESSAGE_COLUMNS = (
    "id",
    "created_at",
    "direction",
    "kind",
    "status",
    "error_code",
    "contact_id",
    "cell",
    "first_name",
    "last_name",
    "texter",
    "body",
)
SURVEY_PREFIX = "survey: "


def unique_names(names: list[str], ours_from: int) -> list[str]:
    """Column names made unique ignoring case, keeping the list's own: one of ours (from
    position `ours_from`) that repeats an earlier name becomes "gotv <name>", and any repeat
    left is numbered."""
    seen: set[str] = set()
    unique = []
    for position, name in enumerate(names):
        if name.casefold() in seen and position >= ours_from:
            name = f"gotv {name}"
        base, copy = name, 2
        while name.casefold() in seen:
            name, copy = f"{base} ({copy})", copy + 1
        seen.add(name.casefold())
        unique.append(name)
    return unique


@dataclass
class ContactsExport:
    """The contacts export of one campaign: its header, its query, and how each row is written.

    The list's own columns come first, under the file's headers and in its order (the
    standard fields with the values gotv keeps: the number normalized, names tidied); then
    ours (the ZIP's state only when the list has no State column of its own): status,
    volunteer, opt-out, last reply, tags, the path through the script's questions and one
    column per question. Phone numbers are written as numbers, times as ISO 8601 in the
    organization's zone.
    """

    campaign: Campaign
    zone: ZoneInfo
    header: list[str] = field(default_factory=list)
    query: Executable | None = None
    write: Callable[[Sequence[Any]], list[object]] = field(default=lambda row: list(row))

    @classmethod
    def of(cls, campaign: Campaign, zone: ZoneInfo) -> ContactsExport:
        export = cls(campaign, zone)
        export.build()
        return export

    def build(self) -> None:
        campaign = self.campaign
        questions = content.questions(campaign, include_retired=True)
        layout = list(campaign.list_columns or [])
        listed_custom = [column["custom"] for column in layout if "custom" in column]
        other_custom = [name for name in campaign.custom_field_names if name not in listed_custom]
        listed_standard = {column["field"] for column in layout if "field" in column}
        standard = [name for name in STANDARD_COLUMNS if name not in listed_standard]
        customs = [*listed_custom, *other_custom]
        # The query's columns: ours, then the answers, then the custom fields (by position).
        base = {name: n for n, name in enumerate((*CONTACT_COLUMNS, "tags"))}
        answers_at = len(base)
        custom_at = answers_at + len(questions)
        custom_index = {name: custom_at + n for n, name in enumerate(customs)}
        self.query = contacts_query(campaign, questions, customs)

        # Each output column reads one query column; a few are converted on the way out.
        sources: list[int] = []
        names: list[str] = []
        for entry in layout:
            names.append(entry["header"])
            if "field" in entry:
                sources.append(base[entry["field"]])
            else:
                sources.append(custom_index[entry["custom"]])
        ours_from = len(names)
        # The list's own State column is the one a voter file loads back by; ours (the
        # ZIP's state) would be a second column of the same name.
        listed = {name.casefold() for name in names}
        for name in ("id", *standard, *GOTV_COLUMNS, "tags"):
            if name == "state" and name in listed:
                continue
            names.append(name)
            sources.append(base[name])
        path_at = len(names)
        names.append("path")
        # (any column of the row: replaced by the path below; the answers may be none at all)
        sources.append(0)
        for n, question in enumerate(questions):
            names.append(f"{SURVEY_PREFIX}{question.text}")
            sources.append(answers_at + n)
        for name in other_custom:
            names.append(name)
            sources.append(custom_index[name])
        self.header = unique_names(names, ours_from)
        when = time_cell(self.zone)
        convert: dict[int, Callable[[Any], object]] = {
            base["cell"]: phone_cell,
            base["opted_out_at"]: when,
            base["last_reply_at"]: when,
            base["status"]: lambda status: getattr(status, "value", status),
        }
        conversions = [
            (position, convert[source])
            for position, source in enumerate(sources)
            if source in convert
        ]
        pick = operator.itemgetter(*sources)
        path = content.path_labels(questions)

        def write(row: Sequence[Any]) -> list[object]:
            out = list(pick(row))
            for position, converted in conversions:
                out[position] = converted(out[position])
            out[path_at] = path(row[answers_at:custom_at])
            return out

        self.write = write

    def rows(self) -> Iterator[list[object]]:
        """Every contact of the campaign, written, streamed in list order."""
        assert self.query is not None
        write = self.write
        return (write(row) for row in stream(self.query))


def tags_of_contact() -> Any:
    """A scalar subquery: the contact's tag names joined by "; " (in no particular order)."""
    return (
        select(func.aggregate_strings(Tag.name, "; "))
        .join(ContactTag, ContactTag.tag_id == Tag.id)
        .where(ContactTag.contact_id == Contact.id)
        .scalar_subquery()
    )


def answer_to(question: SurveyQuestion) -> Any:
    """A scalar subquery: the label of the contact's current answer to `question`."""
    return (
        select(SurveyChoice.label)
        .join(SurveyAnswer, SurveyAnswer.choice_id == SurveyChoice.id)
        .where(SurveyAnswer.contact_id == Contact.id, SurveyAnswer.question_id == question.id)
        .scalar_subquery()
    )


def contacts_query(
    campaign: Campaign, questions: list[SurveyQuestion], customs: list[str]
) -> Executable:
    """The contacts export's query: CONTACT_COLUMNS and tags, an answer per question, then
    the custom fields `customs`. The list's own fields are read out of the JSON by the
    database; the last reply comes from one grouped pass over the campaign's replies (the
    partial index of inbound messages by campaign), joined by id, not a lookup per contact;
    each answer is one probe of the unique (contact, question) index.
    """
    last_reply_ids = (
        select(Message.contact_id, func.max(Message.id).label("message_id"))
        .where(Message.campaign_id == campaign.id, Message.direction == Direction.INBOUND)
        .group_by(Message.contact_id)
        .subquery("last_reply_ids")
    )
    last_reply = Message.__table__.alias("last_reply")
    return (
        select(
            Contact.id,
            Contact.first_name,
            Contact.last_name,
            Contact.cell,
            Contact.zip,
            Contact.state,
            Contact.status,
            Contact.needs_reply,
            User.name,
            OptOut.created_at,
            last_reply.c.created_at,
            last_reply.c.body,
            tags_of_contact(),
            *(answer_to(question) for question in questions),
            *(Contact.custom_fields[name].as_string() for name in customs),
        )
        .select_from(Contact)
        .outerjoin(User, User.id == Contact.texter_id)
        .outerjoin(
            OptOut,
            and_(OptOut.organization_id == campaign.organization_id, OptOut.cell == Contact.cell),
        )
        .outerjoin(last_reply_ids, last_reply_ids.c.contact_id == Contact.id)
        .outerjoin(last_reply, last_reply.c.id == last_reply_ids.c.message_id)
        .where(Contact.campaign_id == campaign.id)
        .order_by(Contact.id)
    )


def message_rows(campaign: Campaign, zone: ZoneInfo) -> Iterator[list[object]]:
    """Every message of the campaign, oldest first, in MESSAGE_COLUMNS order, streamed."""
    when = time_cell(zone)
    rows = stream(
        select(
            Message.id,
            Message.created_at,
            Message.direction,
            Message.kind,
            Message.status,
            Message.error_code,
            Message.contact_id,
            Contact.cell,
            Contact.first_name,
            Contact.last_name,
            User.name,
            Message.body,
        )
        .select_from(Message)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .outerjoin(User, User.id == Message.texter_id)
        .where(Message.campaign_id == campaign.id)
        .order_by(Message.id)
    )
    for row in rows:
        written: list[object] = list(row)
        written[1] = when(row[1])
        written[2], written[3], written[4] = row[2].value, row[3].value, row[4].value
        written[7] = phone_cell(row[7])
        yield written


def opt_out_rows(organization_id: int, zone: ZoneInfo) -> Iterator[list[object]]:
    """The organization's opt-outs as (cell, source, opted_out_at), oldest first, streamed."""
    when = time_cell(zone)
    rows = stream(
        select(OptOut.cell, OptOut.source, OptOut.created_at)
        .where(OptOut.organization_id == organization_id)
        .order_by(OptOut.id)
    )
    return ([phone_cell(cell), source, when(at)] for cell, source, at in rows)


# --- VAN: survey responses and do-not-text, ready for a bulk upload ------------------------------

VAN_ID = re.compile(r"van ?id|vanid|voter ?file ?van", re.IGNORECASE)
VAN_CONTACT_TYPE = "SMS Text"
VAN_RESPONSE_COLUMNS = ("VANID", "Phone", "DateCanvassed", "ContactType", "Result")
VAN_DO_NOT_TEXT_COLUMNS = ("VANID", "Phone", "Reason", "Date")


class NoVanId(Exception):
    """The campaign's lists have no VANID column."""


def van_id_field(campaign: Campaign) -> str:
    """The merge tag of the list column holding VANIDs ("Voter File VANID", "VanID"...).

    :raise NoVanId: when no list of the campaign had one.
    """
    for column in campaign.list_columns or []:
        if "custom" in column and VAN_ID.search(column["header"]):
            return column["custom"]
    for name in campaign.custom_field_names:
        if VAN_ID.search(name.replace("_", " ")):
            return name
    raise NoVanId(
        "This campaign's list has no VANID column (such as “Voter File VANID”): export it "
        "from VAN with one to load the answers back."
    )


def van_responses_header(campaign: Campaign) -> list[str]:
    questions = content.questions(campaign, include_retired=True)
    return unique_names([*VAN_RESPONSE_COLUMNS, *(q.text for q in questions), "Path"], 0)


def van_response_rows(campaign: Campaign, zone: ZoneInfo) -> Iterator[list[object]]:
    """One row per texted contact with a VANID: the day of the first text (the organization's
    zone), the result (Canvassed when they replied, Refused when they opted out, Wrong Number
    when the carrier cannot reach the number, else No Response) and each answer, as VAN's bulk
    upload takes them (each question's column mapped to its survey question there)."""
    van_field = van_id_field(campaign)
    questions = content.questions(campaign, include_retired=True)
    path = content.path_labels(questions)
    first_text = (
        select(func.min(Message.created_at))
        .where(Message.contact_id == Contact.id, Message.is_initial.is_(True))
        .scalar_subquery()
    )
    replied = exists().where(
        Message.contact_id == Contact.id, Message.direction == Direction.INBOUND
    )
    rows = stream(
        select(
            Contact.custom_fields[van_field].as_string(),
            Contact.cell,
            first_text,
            replied,
            optouts.opted_out(campaign.organization_id, Contact.cell),
            optouts.blocked(campaign.organization_id, Contact.cell),
            *(answer_to(question) for question in questions),
        )
        .where(Contact.campaign_id == campaign.id, Contact.status == ContactStatus.TEXTED)
        .order_by(Contact.id)
    )
    for van_id, cell, texted_at, answered, stopped, unreachable, *answers in rows:
        if not van_id:
            continue
        day = as_local_day(texted_at, zone)
        if stopped:
            result = "Refused"
        elif unreachable:
            result = "Wrong Number"
        elif answered:
            result = "Canvassed"
        else:
            result = "No Response"
        yield [van_id, phone_cell(cell), day, VAN_CONTACT_TYPE, result, *answers, path(answers)]


def as_local_day(moment: datetime | str | None, zone: ZoneInfo) -> str:
    if moment is None:
        return ""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return zones.local(moment, zone).date().isoformat()


def van_do_not_text_rows(campaign: Campaign, zone: ZoneInfo) -> Iterator[list[object]]:
    """The campaign's people nobody may text: opted out (with the day), or whose number the
    carrier cannot reach; with their VANID when the list has one."""
    try:
        van_field: str | None = van_id_field(campaign)
    except NoVanId:
        van_field = None
    when = time_cell(zone)
    van_id = Contact.custom_fields[van_field].as_string() if van_field else literal("")
    rows = stream(
        select(van_id, Contact.cell, OptOut.created_at, BlockedNumber.reason)
        .select_from(Contact)
        .outerjoin(
            OptOut,
            and_(OptOut.organization_id == campaign.organization_id, OptOut.cell == Contact.cell),
        )
        .outerjoin(
            BlockedNumber,
            and_(
                BlockedNumber.organization_id == campaign.organization_id,
                BlockedNumber.cell == Contact.cell,
            ),
        )
        .where(
            Contact.campaign_id == campaign.id,
            or_(OptOut.id.is_not(None), BlockedNumber.id.is_not(None)),
        )
        .order_by(Contact.id)
    )
    for vanid, cell, opted_out_at, blocked_reason in rows:
        if opted_out_at is not None:
            yield [vanid or "", phone_cell(cell), "opted out", when(opted_out_at)]
        else:
            reason = (blocked_reason or "").replace("_", " ") or "cannot receive texts"
            yield [vanid or "", phone_cell(cell), f"wrong number ({reason})", ""]
