"""CSV files we hand to people: streamed, and safe to open in a spreadsheet.

Every cell goes through `safe_cell`. Big exports (a campaign's million contacts or messages)
are read with a server-side cursor in chunks of Core rows (no ORM object per row) and written
out in chunks of about CHUNK_BYTES, so memory stays flat whatever the row count.
"""

from __future__ import annotations

import csv
import io
import string
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Executable, and_, func, select

from gotv.campaigns import content
from gotv.db import db
from gotv.models import (
    Campaign,
    Contact,
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
    """The value as text that a spreadsheet shows as text, never runs as a formula (OWASP)."""
    if value is None:
        return ""
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


# --- What organizers can download -------------------------------------------------------------

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


def contacts_header(campaign: Campaign) -> list[str]:
    """The contacts export's columns: ours, the tags, one per survey question (its text), then
    the list's own (custom) fields."""
    # Retired questions too: their answers are data.
    questions = [
        f"survey: {question.text}" for question in content.questions(campaign, include_retired=True)
    ]
    return [*CONTACT_COLUMNS, "tags", *questions, *campaign.custom_field_names]


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


def contact_rows(campaign: Campaign) -> Iterator[Any]:
    """One row per contact of the campaign, in `contacts_header` order, streamed."""
    return stream(contacts_query(campaign))


def contacts_query(campaign: Campaign) -> Executable:
    """The contacts export's query. The list's own fields are read out of the JSON by the
    database; the last reply comes from one grouped pass over the campaign's replies (the
    partial index of inbound messages by campaign), joined by id, not a lookup per contact.
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
            *(
                answer_to(question)
                for question in content.questions(campaign, include_retired=True)
            ),
            *(Contact.custom_fields[name].as_string() for name in campaign.custom_field_names),
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


def message_rows(campaign: Campaign) -> Iterator[Any]:
    """Every message of the campaign, oldest first, in MESSAGE_COLUMNS order, streamed."""
    return stream(
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
