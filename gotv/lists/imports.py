"""Voter-list imports: store the upload, map its columns, then load it in a background job.

The flow: `receive_upload` stores the file and sniffs its encoding, delimiter and headers;
`start` records the organizer's mapping and queues the import; the job calls `run`, which
streams the file and loads it all or nothing, reporting progress through Redis.
Every row not loaded is kept as an `ImportRejection` with its reason; nothing is lost silently.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import errno
import io
import json
import logging
import operator
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from json.encoder import encode_basestring
from typing import IO, Any

from psycopg.copy import QueuedLibpqWriter
from redis.exceptions import RedisError
from sqlalchemy import delete, exists, insert, select, update

from gotv.compliance import hours
from gotv.db import db
from gotv.edge import metrics, queue, storage
from gotv.lists import contacts, records
from gotv.lists.contacts import UnreadableList
from gotv.lists.exports import csv_lines
from gotv.lists.fastphone import Normalizer
from gotv.models import (
    Campaign,
    Contact,
    ContactImport,
    ContactStatus,
    Direction,
    ImportMode,
    ImportRejection,
    ImportStatus,
    Message,
    MessageStatus,
    OptOut,
    Organization,
    User,
    utcnow,
)

__all__ = [
    "UnreadableList",
    "reimport_recent",
    "preview_rows",
    "progress",
    "receive_upload",
    "rejections_csv",
    "request_cancel",
    "recover_stranded",
    "expire_uploads",
    "hand_back",
    "run",
    "start",
]

log = logging.getLogger(__name__)

CHUNK_ROWS = 5000  # rows between database writes, progress reports and cancel checks
KEY_TTL_SECONDS = 24 * 3600
# The header row may be this long, and hold this many columns (an L2 file has about 700).
MAX_HEADER_BYTES = 256 * 1024
MAX_COLUMNS = 1000
SNIFF_BYTES = MAX_HEADER_BYTES + 1  # the start of the file kept to read the header from
# The mapping screen shows this much of a preview value.
PREVIEW_VALUE = 100
COPY_BYTES = 1024 * 1024
COUNTERS = (
    "bytes_read",
    "rows_read",
    "loaded",
    "rejected",
    "duplicates",
    "opted_out",
    "excluded",
    "recent",
)
# The reason of a row left out by the re-texting guard starts so (`reimport_recent` finds them).
RECENT_REASON = "texted by your organization in the last"
FINISHED = (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.CANCELLED)
NAME_LENGTH = 100
MORE_VALUES = "quote any value that holds the delimiter"
NAME_CACHE_SIZE = 200_000
REASON_LENGTH = 100


class ImportCancelled(Exception):
    """The organizer asked to cancel a running import."""


class ImportHandedBack(Exception):
    """The worker running the load is stopping (SIGTERM): the import goes back to the queue."""


class StorageFull(Exception):
    """The server's disk (or this process's file size limit) refused the upload."""


# A write refused for lack of space: disk full, file too large for the process, quota.
NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


# --- Upload: store the file, sniff it -------------------------------------------------------


def receive_upload(
    campaign: Campaign, user: User, filename: str, stream: IO[bytes]
) -> ContactImport:
    """Keep the upload in the upload store (gotv/edge/storage.py) and add (and flush) its
    ContactImport, UPLOADED.

    The encoding (UTF-8 with or without BOM, UTF-16 LE/BE with or without BOM, else "cp1252":
    UTF-8, and Windows-1252 where it is not, `text_codec`), delimiter and headers are detected
    and recorded; the mapping is guessed.
    The store keeps the file whatever becomes of the caller's transaction: a caller that does
    not commit the import deletes it (`discard_upload`), or `expire_uploads` does later.
    :raise UnreadableList: (and the file is deleted) when the file has no header row.
    :raise StorageFull: (and nothing is kept) when the disk is full.
    """
    inspected = Inspected(stream)
    try:
        key = storage.uploads().save(inspected)
    except OSError as error:
        if error.errno in NO_SPACE:
            raise StorageFull(str(error)) from error
        raise
    try:
        encoding = detect_encoding(inspected.head, inspected.utf8())
        delimiter, headers = sniff(inspected.head, encoding)
    except BaseException:
        discard_upload(key)
        raise
    imp = ContactImport(
        organization_id=campaign.organization_id,
        campaign_id=campaign.id,
        user_id=user.id,
        filename=os.path.basename(filename)[:255] or "upload.csv",
        upload_key=key,
        file_size=inspected.size,
        encoding=encoding,
        delimiter=delimiter,
        headers=headers,
        mapping=contacts.map_headers(headers),
    )
    db.session.add(imp)
    db.session.flush()
    return imp


class Inspected:
    """A stream, read once on its way to the store: its size, its first bytes, whether it is
    all UTF-8."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.size, self.head, self.all_utf8 = 0, b"", True

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int = -1) -> bytes:
        chunk = self.stream.read(size)
        self.size += len(chunk)
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]
        self.all_utf8 = self.all_utf8 and decodes(self.decoder, chunk, final=False)
        return chunk

    def utf8(self) -> bool:
        """Whether the whole stream, read to its end, was UTF-8."""
        return self.all_utf8 and decodes(self.decoder, b"", final=True)


def decodes(decoder: codecs.IncrementalDecoder, data: bytes, final: bool) -> bool:
    try:
        decoder.decode(data, final)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(head: bytes, utf8: bool) -> str:
    """The Python codec name for a file starting with `head` (`utf8`: it all decodes as UTF-8)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head[:4096]
    sample = sample[: len(sample) // 2 * 2]
    if sample and sample[1::2].count(0) > len(sample) // 4:
        return "utf-16-le"  # ASCII text in UTF-16 LE has a zero in every second byte
    if sample and sample[0::2].count(0) > len(sample) // 4:
        return "utf-16-be"
    return "utf-8" if utf8 else "cp1252"


def sniff(head: bytes, encoding: str) -> tuple[str, list[str]]:
    """(delimiter, headers) from the start of the file. :raise UnreadableList: no header."""
    if head.startswith(b"PK\x03\x04"):
        raise UnreadableList("this looks like an Excel file: save it as CSV and upload that")
    codec, errors = text_codec(encoding)
    text = head.decode(codec, errors=errors if errors != "strict" else "replace")
    first = next(iter(io.StringIO(text, newline="")), "")
    if len(head) >= SNIFF_BYTES and not first.endswith(("\n", "\r")):
        raise UnreadableList(
            f"the header row (line 1) is longer than {MAX_HEADER_BYTES // 1024} KB: keep the "
            "columns you need, save the file as CSV and upload that"
        )
    delimiter = records.delimiter_of(first)
    # Read as the rows are (open_rows): a quoted header may span lines (Alt+Enter in a cell).
    header = next(iter(records.Records(io.StringIO(text, newline=""), delimiter)), None)
    row = header.values if header is not None and header.values is not None else []
    if header is not None and header.values is None:
        raise UnreadableList(f"the header row cannot be read ({header.reason})")
    if not any(row_value.strip() for row_value in row):
        raise UnreadableList("the file has no header row (expected column names on line 1)")
    if len(row) > MAX_COLUMNS:
        raise UnreadableList(
            f"the file has {len(row):,} columns; gotv reads at most {MAX_COLUMNS:,}: keep the "
            "columns you need, save the file as CSV and upload that"
        )
    return delimiter, unique_headers(row)


def unique_headers(row: list[str]) -> list[str]:
    """The header row, its spaces and line breaks each made one space (a browser sends a line
    break back as CRLF: the mapping form's choice would match no header), blank ones named by
    position, repeats numbered."""
    headers: list[str] = []
    for position, value in enumerate(row, 1):
        name = " ".join(value.split()) or f"column {position}"
        base, copy = name, 2
        while name in headers:
            name, copy = f"{base} ({copy})", copy + 1
        headers.append(name)
    return headers


def text_codec(encoding: str) -> tuple[str, str]:
    """(codec, errors) that read a file recorded as `encoding`: "cp1252", a file not all
    UTF-8, is read as UTF-8 and Windows-1252 where it is not (records.MIXED)."""
    if encoding == "cp1252":
        return "utf-8", records.MIXED
    return encoding, "strict"


def open_rows(imp: ContactImport) -> tuple[io.TextIOWrapper, records.Records]:
    """The open file and its records past the header row (line 1, and more if a quoted header
    spans lines), every physical line accounted for (gotv/lists/records.py)."""
    codec, errors = text_codec(imp.encoding)
    stored = storage.uploads().open(imp.upload_key)
    handle = io.TextIOWrapper(stored, encoding=codec, errors=errors, newline="")
    reader = records.Records(handle, imp.delimiter)
    try:
        next(iter(reader), None)  # the header, read as `sniff` read it when it was uploaded
    except BaseException:
        handle.close()
        raise
    return handle, reader


# What reading a stored upload may raise for a file that is not good CSV text (or is gone:
# expired, say; the import then fails and says so).
UNREADABLE = (UnicodeDecodeError, csv.Error, FileNotFoundError)


def preview_rows(imp: ContactImport, limit: int = 5) -> list[list[str]]:
    """The first `limit` non-blank data rows that can be read, cut to the header's columns and
    each value to PREVIEW_VALUE characters (for the mapping screen: a bounded page, however
    wide or long the rows).

    Stops quietly at text that cannot be decoded: the import itself then fails and says why.
    """
    rows: list[list[str]] = []
    width = len(imp.headers)
    try:
        handle, reader = open_rows(imp)
    except UNREADABLE:
        return rows
    with handle:
        try:
            for record in reader:
                values = record.values
                if values is not None and any(value.strip() for value in values):
                    rows.append([value[:PREVIEW_VALUE] for value in values[:width]])
                if len(rows) >= limit:
                    break
        except UNREADABLE:
            pass
    return rows


# --- Start, cancel, progress, rejections ----------------------------------------------------


def start(
    imp: ContactImport,
    mapping: dict[str, str],
    mode: ImportMode,
    exclude_campaign_ids: list[int],
    include_recent: bool = False,
) -> None:
    """Record the mapping and options and mark the import QUEUED; the caller commits, then
    enqueues "workers.imports.import_contacts" (imp.id) on queue.IMPORT.

    Numbers the organization texted within its re-texting guard are left out, unless
    `include_recent` says the organizer wants them texted again on purpose.

    :raise ValueError: with a message for the organizer when the choices cannot be used.
    """
    if imp.status is not ImportStatus.UPLOADED:
        raise ValueError("this import has already been started")
    imp.mapping = check_mapping(imp, mapping)
    imp.exclude_campaign_ids = check_exclusions(imp, exclude_campaign_ids)
    imp.mode = ImportMode(mode)
    imp.include_recent = include_recent
    imp.status = ImportStatus.QUEUED


def check_mapping(imp: ContactImport, mapping: dict[str, str]) -> dict[str, str]:
    chosen = {field: header for field, header in mapping.items() if header}
    unknown = set(chosen) - set(contacts.STANDARD_FIELDS)
    if unknown:
        raise ValueError(f"unknown field: {', '.join(sorted(unknown))}")
    if "cell" not in chosen:
        raise ValueError("choose the column that holds the cell phone numbers")
    for field, header in chosen.items():
        if header not in imp.headers:
            raise ValueError(f"the file has no column {header!r} (for {field})")
    if len(set(chosen.values())) != len(chosen):
        raise ValueError("each column can be used for only one field")
    return chosen


def check_exclusions(imp: ContactImport, campaign_ids: list[int]) -> list[int]:
    ids = sorted({int(campaign_id) for campaign_id in campaign_ids})
    if imp.campaign_id in ids:
        raise ValueError("a campaign cannot exclude its own contacts")
    found = db.session.scalars(
        select(Campaign.id).where(
            Campaign.id.in_(ids), Campaign.organization_id == imp.organization_id
        )
    ).all()
    if len(found) != len(ids):
        raise ValueError("some of the campaigns to exclude do not exist")
    return ids


def cancel_key(import_id: int) -> str:
    return f"gotv:import:{import_id}:cancel"


def progress_key(import_id: int) -> str:
    return f"gotv:import:{import_id}"


def request_cancel(imp: ContactImport) -> None:
    """Cancel at once if not running yet; else ask the running load to stop (caller commits).

    A running load stops at its next chunk (it checks Redis between chunks: its database
    connection is busy with the load) and rolls back. When Redis cannot be reached, the cancel
    is kept in the row instead, and `recover_stranded` passes it on, or cancels the import
    itself if its worker is gone.
    """
    if imp.status in (ImportStatus.UPLOADED, ImportStatus.QUEUED):
        imp.status = ImportStatus.CANCELLED
        imp.finished_at = utcnow()
        discard_upload(imp.upload_key)
    elif imp.status is ImportStatus.RUNNING and not ask_to_cancel(imp.id):
        log.warning("redis unavailable; the cancel of import %s waits in the database", imp.id)
        imp.cancel_requested = True


def ask_to_cancel(import_id: int) -> bool:
    """Tell a running load to stop; False when Redis cannot be reached."""
    try:
        queue.redis().set(cancel_key(import_id), "1", ex=KEY_TTL_SECONDS)
    except RedisError:
        return False
    return True


def progress(imp: ContactImport) -> dict[str, object]:
    """Status and counters, JSON-ready; live from Redis while the import runs."""
    numbers = {name: int(getattr(imp, name) or 0) for name in COUNTERS}
    if imp.status is ImportStatus.RUNNING:
        numbers.update(live_numbers(imp.id))
    if imp.status is ImportStatus.DONE:
        percent = 100
    else:
        percent = min(100, numbers["bytes_read"] * 100 // imp.file_size) if imp.file_size else 0
    result: dict[str, object] = {name: numbers[name] for name in COUNTERS if name != "bytes_read"}
    result.update(
        status=imp.status.value,
        percent=percent,
        error=imp.error,
        finished=imp.status in FINISHED,
    )
    return result


def live_numbers(import_id: int) -> dict[str, int]:
    try:
        raw = queue.redis().hgetall(progress_key(import_id))
    except RedisError:
        return {}
    numbers = {as_text(key): int(value) for key, value in raw.items()}
    return {key: value for key, value in numbers.items() if key in COUNTERS}


def as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def rejections_csv(imp: ContactImport) -> Iterator[str]:
    """The rows not loaded: line, reason, then the file's own columns (formula-safe CSV)."""
    rows = db.session.scalars(
        select(ImportRejection)
        .where(ImportRejection.import_id == imp.id)
        .order_by(ImportRejection.line, ImportRejection.id)
        .execution_options(yield_per=1000)
    )
    return csv_lines(
        ["line", "reason", *imp.headers],
        ([rejection.line, rejection.reason, *rejection.row] for rejection in rows),
    )


# --- The job ---------------------------------------------------------------------------------


def run(import_id: int, region: str = "US", stop: threading.Event | None = None) -> None:
    """Load a QUEUED import all or nothing: DONE with everything committed in one transaction,
    or CANCELLED/FAILED (with the error) and the campaign exactly as it was. Numbers written
    without a country code are read as `region`'s. When `stop` is set (the worker is stopping)
    the load stops at its next chunk, rolls back and queues the import again (`hand_back`).

    The load's transaction holds its import's row (FOR KEY SHARE) from start to end, which is
    how `recover_stranded` tells a live load from one whose worker died: the dead one's
    transaction, rows and lock went with its connection.
    """
    # Claim it with a conditional UPDATE, so a second job for the same import does nothing.
    claimed = db.session.execute(
        update(ContactImport)
        .where(ContactImport.id == import_id, ContactImport.status == ImportStatus.QUEUED)
        .values(status=ImportStatus.RUNNING, attempts=ContactImport.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    if claimed.rowcount != 1 or not hold(import_id):  # type: ignore[attr-defined]
        db.session.rollback()
        log.info("import %s: nothing to do", import_id)
        return
    imp = db.session.get(ContactImport, import_id)
    assert imp is not None
    try:
        Loader(imp, region, stop).load()
    except ImportCancelled:
        finish_empty(import_id, ImportStatus.CANCELLED, "")
    except ImportHandedBack:
        hand_back(import_id)
    except Exception as error:
        log.exception("import %s failed", import_id)
        finish_empty(import_id, ImportStatus.FAILED, describe(error))
    finally:
        clear_keys(import_id)


def hold(import_id: int) -> bool:
    """Begin the load's transaction by locking the import's row, if it is still RUNNING (the
    sweep may have taken it back between the claim and here). FOR KEY SHARE: a page may still
    update the row meanwhile; only the sweep's FOR UPDATE waits (SKIP LOCKED: passes over it).
    On SQLite the transaction's BEGIN IMMEDIATE holds the whole database instead."""
    held = db.session.execute(
        select(ContactImport.id)
        .where(ContactImport.id == import_id, ContactImport.status == ImportStatus.RUNNING)
        .with_for_update(key_share=True)
    ).first()
    return held is not None


def describe(error: Exception) -> str:
    """A message for the organizer."""
    if isinstance(error, FileNotFoundError):
        return "the uploaded file is missing: upload the list again"
    if isinstance(error, OSError) and error.errno in NO_SPACE:
        return (
            "the server ran out of disk space while importing, so nothing was loaded: ask "
            "your administrator to free some space, then upload the list again"
        )
    if isinstance(error, UnicodeDecodeError):
        return f"the file is not valid {error.encoding} text near byte {error.start}"
    if isinstance(error, csv.Error):
        return (
            f"the file could not be read as CSV ({error}): open it in a spreadsheet, save it "
            "as CSV and upload it again"
        )
    return f"the import failed ({type(error).__name__}: {error})"[:1000]


def finish_empty(import_id: int, status: ImportStatus, error: str) -> None:
    """Undo everything the import wrote, then record how it ended (unless the sweep, finding
    it between the two, already has)."""
    db.session.rollback()
    imp = db.session.get(ContactImport, import_id)
    assert imp is not None
    ended = imp.status is ImportStatus.RUNNING
    if ended:
        end(imp, status, error)
    db.session.commit()
    if ended:
        discard_upload(imp.upload_key)


def hand_back(import_id: int) -> None:
    """Undo everything the load wrote and queue the import again for another worker (this
    one is stopping), or end it cancelled when its organizer asked. Commits.

    The next load runs under a job id of its own (the import's `attempts`, which this load
    counted), so the job of this one, still finishing, is never overwritten.
    """
    db.session.rollback()
    imp = db.session.get(ContactImport, import_id, with_for_update=True)  # (the sweep skips it)
    assert imp is not None
    if imp.status is not ImportStatus.RUNNING:  # the sweep took it back meanwhile
        db.session.commit()
        return
    if imp.cancel_requested or cancel_requested(import_id):
        end(imp, ImportStatus.CANCELLED, "")
        db.session.commit()
        discard_upload(imp.upload_key)
        return
    imp.status = ImportStatus.QUEUED
    organization_id, attempt = imp.organization_id, imp.attempts
    db.session.commit()
    log.info("import %s: handed back, its worker is stopping", import_id)
    # When Redis cannot take it, the sweep (workers.imports.sweep_imports) enqueues it later.
    queue.enqueue_import(import_id, organization_id, attempt=attempt)


def end(imp: ContactImport, status: ImportStatus, error: str) -> None:
    """Record how an import ended; the caller commits, then deletes its file from the store."""
    imp.status = status
    imp.error = error
    imp.finished_at = utcnow()


def clear_keys(import_id: int) -> None:
    try:
        queue.redis().delete(cancel_key(import_id))
    except RedisError:
        pass


def discard_upload(key: str) -> None:
    """Delete an upload from the store; a store that fails is logged, and `expire_uploads`
    deletes the file later."""
    try:
        storage.uploads().delete(key)
    except Exception:
        log.exception("could not delete upload %s; expire_uploads will", key)


# --- Imports whose worker died, uploads nobody claimed ----------------------------------------

# Loads of one import a worker may start: a list that kills its worker each time (memory, say)
# must not take worker after worker down.
MAX_ATTEMPTS = 3
STRANDED = (
    "the worker loading this list stopped (a restart or a crash), so nothing was loaded: "
    "upload the list again to start it again"
)
EXPIRED = (
    "its columns were not checked within {hours} hours of the upload, so the file was deleted "
    "(it holds voters' details): upload the list again to start it again"
)


def recover_stranded() -> dict[int, ImportStatus]:
    """Take back every RUNNING import whose worker died: QUEUED again (and enqueued) for a fresh
    start, or CANCELLED when its organizer asked, or FAILED with STRANDED once it has been
    started MAX_ATTEMPTS times. Its rows went with the dead worker's transaction. Commits.

    A live load holds its row (see `hold`), so FOR UPDATE SKIP LOCKED finds only the dead; on
    SQLite, whose loads hold the whole database, this cannot even begin while one is alive.
    Cancels that could only be kept in the database (Redis was down) are passed to the live.
    :return: import id -> its new status, for the imports taken back.
    """
    stranded = db.session.scalars(
        select(ContactImport)
        .where(ContactImport.status == ImportStatus.RUNNING)
        .with_for_update(skip_locked=True)
    ).all()
    taken: dict[int, ImportStatus] = {}
    for imp in stranded:
        if imp.cancel_requested or cancel_requested(imp.id):
            end(imp, ImportStatus.CANCELLED, "")
        elif imp.attempts >= MAX_ATTEMPTS:
            end(imp, ImportStatus.FAILED, STRANDED)
        else:
            imp.status = ImportStatus.QUEUED
        taken[imp.id] = imp.status
    attempts = {imp.id: (imp.organization_id, imp.attempts) for imp in stranded}
    keys = {imp.id: imp.upload_key for imp in stranded}
    db.session.commit()
    for import_id, status in taken.items():
        log.warning("import %s: its worker died mid-load; now %s", import_id, status.value)
        if status is ImportStatus.QUEUED:
            organization_id, attempt = attempts[import_id]
            queue.enqueue_import(import_id, organization_id, attempt=attempt)
        else:
            discard_upload(keys[import_id])
            clear_keys(import_id)
    relay_cancels()
    return taken


def relay_cancels() -> None:
    """Pass the cancels kept in the database (Redis was down) on to the loads still running."""
    waiting = db.session.scalars(
        select(ContactImport.id).where(
            ContactImport.status == ImportStatus.RUNNING, ContactImport.cancel_requested
        )
    ).all()
    for import_id in waiting:
        ask_to_cancel(import_id)


def expire_uploads(max_age: timedelta, now: datetime | None = None) -> int:
    """Cancel the imports left at the mapping step (UPLOADED) longer than `max_age`, saying
    why (EXPIRED), and delete their files; then delete every file in the store older than that
    which no import waiting or running names (a request that failed after storing it, a delete
    that failed). Commits. :return: how many files were deleted.
    """
    cutoff = (now or utcnow()) - max_age
    hours = int(max_age.total_seconds() // 3600)
    waiting = db.session.scalars(
        select(ContactImport)
        .where(ContactImport.status == ImportStatus.UPLOADED, ContactImport.created_at < cutoff)
        .with_for_update(skip_locked=True)
    ).all()
    keys = [imp.upload_key for imp in waiting]
    for imp in waiting:
        imp.status = ImportStatus.CANCELLED
        imp.error = EXPIRED.format(hours=hours)
        imp.finished_at = utcnow()
    db.session.commit()
    in_use = set(
        db.session.scalars(
            select(ContactImport.upload_key).where(
                ContactImport.status.in_(
                    [ImportStatus.UPLOADED, ImportStatus.QUEUED, ImportStatus.RUNNING]
                )
            )
        )
    )
    db.session.commit()
    keys += [key for key in storage.uploads().saved_before(cutoff) if key not in in_use]
    for key in dict.fromkeys(keys):
        discard_upload(key)
    return len(set(keys))


class Loader:
    """One run of one import: reads rows, sorts them into contacts and rejections, writes them.

    Nothing is committed until `load` finishes; the caller rolls back on any exception.
    """

    def __init__(
        self, imp: ContactImport, region: str = "US", stop: threading.Event | None = None
    ) -> None:
        self.imp = imp
        self.stop = stop
        self.campaign = db.session.get(Campaign, imp.campaign_id)
        organization = db.session.get(Organization, imp.organization_id)
        territories = organization is not None and organization.texts_us_territories
        self.normalize = Normalizer(region, territories)
        self.writer = make_writer(imp)
        index = {header: position for position, header in enumerate(imp.headers)}
        self.width = len(imp.headers)
        # Column of each standard field; an unmapped one reads the blank column after the last.
        at = {field: index[header] for field, header in imp.mapping.items()}
        self.cell_at, self.first_at, self.last_at, self.zip_at = (
            at.get(field, self.width) for field in contacts.STANDARD_FIELDS
        )
        self.custom = custom_columns(imp)
        self.custom_values = tuple_getter([position for position, _ in self.custom])
        self.writer.custom_names = [name for _, name in self.custom]
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.places: dict[str, tuple[str, str, str]] = {}
        self.zones: dict[str, str] = {}
        self.combined: dict[tuple[str, str], str] = {}
        self.rules: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.seen: set[int] = set()
        self.progress_shown = True  # until Redis fails once (then said once, not each chunk)
        self.contacts: list[tuple[Any, ...]] = []
        self.rejections: list[tuple[int, str, list[str]]] = []

    def load(self) -> None:
        """Read the whole file and write everything, then mark DONE and commit once."""
        self.existing, self.opted_out, self.excluded = self.prepare()
        self.recent = self.recently_texted()
        self.check_stop()
        handle, reader = open_rows(self.imp)
        with handle, self.writer:
            sort_row = self.row
            for number, record in enumerate(reader, 1):
                if record.values is None:
                    self.reject(record.line, [record.text], "rejected", record.reason)
                else:
                    sort_row(record.line, record.values)
                if number % CHUNK_ROWS == 0:
                    self.flush(handle.buffer.tell())  # type: ignore[attr-defined]
            self.flush(self.imp.file_size)
        self.finish()

    def prepare(self) -> tuple[set[int], set[int], set[int]]:
        """Replace mode's deletes; then the numbers already in the campaign, opted out, excluded."""
        imp = self.imp
        if imp.mode is ImportMode.REPLACE:
            db.session.execute(
                delete(Contact)
                .where(
                    Contact.campaign_id == imp.campaign_id,
                    Contact.status == ContactStatus.NEW,
                    ~exists().where(Message.contact_id == Contact.id),
                )
                .execution_options(synchronize_session=False)
            )
        existing = cells(select(Contact.cell).where(Contact.campaign_id == imp.campaign_id))
        opted = cells(select(OptOut.cell).where(OptOut.organization_id == imp.organization_id))
        excluded = cells(
            select(Contact.cell).where(Contact.campaign_id.in_(imp.exclude_campaign_ids or [-1]))
        )
        return existing, opted, excluded

    def recently_texted(self) -> set[int]:
        """The numbers the organization's other campaigns texted within its re-texting guard
        (none when the organizer includes them on purpose, or the guard is off).

        Read per campaign through `ix_message_campaign_created`, only the guard's days back.
        """
        imp = self.imp
        days = 0 if imp.include_recent else self.guard_days()
        imp.recent_days = days
        if not days:
            return set()
        campaigns = select(Campaign.id).where(
            Campaign.organization_id == imp.organization_id, Campaign.id != imp.campaign_id
        )
        return cells(
            select(Message.to_number)
            .where(
                Message.campaign_id.in_(campaigns),
                Message.created_at >= utcnow() - timedelta(days=days),
                Message.direction == Direction.OUTBOUND,
                Message.status != MessageStatus.REFUSED,
            )
            .distinct()
        )

    def guard_days(self) -> int:
        organization = db.session.get(Organization, self.imp.organization_id)
        return organization.retext_guard_days if organization is not None else 0

    def row(self, line: int, row: list[str]) -> None:
        """Sort one CSV record into a contact or a rejection (blank records are skipped)."""
        values = list(map(str.strip, row))
        if not any(values):
            return
        # Blank is judged on the whole row: values past the header's width are not mapped,
        # but a row holding only those is rejected (and downloadable), not silently dropped.
        if len(values) != self.width:
            if any(values[self.width :]):
                # A value holding the delimiter unquoted ("Lee, Ann") shifted the columns
                # after it: which value is the number, which the ZIP, cannot be known.
                reason = f"{len(values)} values for {self.width} columns: {MORE_VALUES}"
                self.reject(line, row, "rejected", reason)
                return
            values = (values + [""] * self.width)[: self.width]
        values.append("")  # the value of every field the mapping leaves out
        verdict = self.normalize(values[self.cell_at])
        if verdict.reason:
            self.reject(line, row, "rejected", "not texted: " + verdict.explanation)
            return
        cell = verdict.cell
        counter, reason = self.filter(int(cell[1:]))
        if counter:
            self.reject(line, row, counter, reason)
            return
        self.contacts.append(self.contact(cell, values))

    def filter(self, number: int) -> tuple[str, str]:
        """("", "") for a number to load, else (the counter, the reason)."""
        if number in self.seen:
            return "duplicates", "duplicate in file"
        self.seen.add(number)
        if number in self.opted_out:
            return "opted_out", "opted out"
        if number in self.existing:
            return "duplicates", "already in campaign"
        if number in self.excluded:
            return "excluded", "in an excluded campaign"
        if number in self.recent:
            return "recent", f"{RECENT_REASON} {self.imp.recent_days} days"
        return "", ""

    def reject(self, line: int, row: list[str], counter: str, reason: str) -> None:
        self.counts[counter] += 1
        self.rejections.append((line, reason[:REASON_LENGTH], row))

    def contact(self, cell: str, values: list[str]) -> tuple[Any, ...]:
        """(cell, first, last, zip, state, rule states, zones, *custom values) for one row."""
        zip5, state, zones = self.locate(values[self.zip_at], cell)
        rule_key = state + cell[:5]
        rule_states = self.rules.get(rule_key)
        if rule_states is None:
            rule_states = " ".join(sorted({state, contacts.area_code_state(cell)} - {""}))
            self.rules[rule_key] = rule_states
        return (
            cell,
            self.name(values[self.first_at]),
            self.name(values[self.last_at]),
            zip5,
            state,
            rule_states,
            zones,
        ) + self.custom_values(values)

    def name(self, raw: str) -> str:
        """contacts.tidy_name, cut to fit, cached (names repeat; the cache is bounded)."""
        tidy = self.names.get(raw)
        if tidy is None:
            tidy = contacts.tidy_name(raw)[:NAME_LENGTH]
            if len(self.names) < NAME_CACHE_SIZE:
                self.names[raw] = tidy
        return tidy

    def locate(self, raw_zip: str, cell: str) -> tuple[str, str, str]:
        """contacts.locate, cached by ZIP text and by number prefix."""
        place = self.places.get(raw_zip)
        if place is None:
            zip5 = contacts.repair_zip(raw_zip)
            state, zone = contacts.zip_info(zip5) if zip5 else ("", "")
            place = self.places[raw_zip] = (zip5, state, zone)
        # phonenumbers' time-zone data for +1 is keyed on at most 7 digits (+1 and 6 more).
        prefix = cell[:8] if cell.startswith("+1") and len(cell) == 12 else cell
        number_zones = self.zones.get(prefix)
        if number_zones is None:
            number_zones = self.zones[prefix] = contacts.phone_zones(cell)
        key = (place[2], number_zones)
        zones = self.combined.get(key)
        if zones is None:
            zones = self.combined[key] = hours.combine_zones(place[2], number_zones)
        return place[0], place[1], zones

    def flush(self, bytes_read: int) -> None:
        """Write the buffered rows, publish progress, and stop if a cancel was requested."""
        self.writer.contacts(self.contacts)
        self.writer.rejections(self.rejections)
        counts = self.counts
        counts["loaded"] += len(self.contacts)
        counts["rows_read"] += len(self.contacts) + len(self.rejections)
        counts["bytes_read"] = bytes_read
        self.contacts, self.rejections = [], []
        if not report(self.imp.id, self.counts) and self.progress_shown:
            log.warning("redis unavailable; import %s progress not reported", self.imp.id)
            self.progress_shown = False
        self.check_stop()

    def check_stop(self) -> None:
        """:raise ImportHandedBack: when the worker is stopping."""
        if self.stop is not None and self.stop.is_set():
            raise ImportHandedBack

    def finish(self) -> None:
        imp, campaign = self.imp, self.campaign
        if cancel_requested(imp.id):
            raise ImportCancelled
        for name, value in self.counts.items():
            setattr(imp, name, value)
        imp.status = ImportStatus.DONE
        imp.finished_at = utcnow()
        if campaign is not None:
            names = {name for _, name in self.custom}
            campaign.custom_field_names = sorted(set(campaign.custom_field_names) | names)
            campaign.list_columns = merged_columns(campaign.list_columns or [], file_columns(imp))
        db.session.commit()
        count_rows(self.counts)
        discard_upload(imp.upload_key)


def count_rows(counts: dict[str, int]) -> None:
    """Add a finished import's rows to gotv_import_rows_total, by what became of them."""
    for outcome in ("loaded", "rejected", "duplicates", "opted_out", "excluded"):
        if counts[outcome]:
            metrics.IMPORT_ROWS.labels(outcome).inc(counts[outcome])


def file_columns(imp: ContactImport) -> list[dict[str, str]]:
    """The import's columns in the file's order, each {"header": its name in the file} with
    the standard "field" it was mapped to, or the "custom" merge tag it is kept as."""
    field_of = {header: field for field, header in imp.mapping.items()}
    custom = dict(custom_columns(imp))
    columns = []
    for position, header in enumerate(imp.headers):
        if header in field_of:
            columns.append({"header": header, "field": field_of[header]})
        elif position in custom:
            columns.append({"header": header, "custom": custom[position]})
    return columns


def merged_columns(
    known: list[dict[str, str]], added: list[dict[str, str]]
) -> list[dict[str, str]]:
    """A campaign's list columns after another upload: the earlier ones, then the new file's
    columns under headers not seen yet (ignoring case), in its order."""
    seen = {column["header"].casefold() for column in known}
    return known + [column for column in added if column["header"].casefold() not in seen]


def reimport_recent(imp: ContactImport, user: User) -> ContactImport | None:
    """A new import of the rows `imp` left out because the organization texted them recently,
    started with `include_recent` (the organizer means to text them again); None when there
    were none. Added and flushed, QUEUED: the caller commits, then enqueues it.

    The rows come from the import's rejections (the original file is gone), written out as a
    UTF-8 CSV under the same headers, with the same mapping, into the upload store.
    """
    rows = db.session.scalars(
        select(ImportRejection.row)
        .where(
            ImportRejection.import_id == imp.id,
            ImportRejection.reason.startswith(RECENT_REASON),
        )
        .order_by(ImportRejection.line)
    ).all()
    if not rows:
        return None
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(imp.headers)
    writer.writerows(rows)
    data = text.getvalue().encode("utf-8")
    key = storage.uploads().save(io.BytesIO(data))
    again = ContactImport(
        organization_id=imp.organization_id,
        campaign_id=imp.campaign_id,
        user_id=user.id,
        filename=f"{imp.filename} (texted recently)"[:255],
        upload_key=key,
        file_size=len(data),
        encoding="utf-8",
        delimiter=",",
        headers=list(imp.headers),
        mapping=dict(imp.mapping),
    )
    db.session.add(again)
    db.session.flush()
    start(again, dict(imp.mapping), ImportMode.APPEND, list(imp.exclude_campaign_ids), True)
    return again


def tuple_getter(positions: list[int]) -> Callable[[list[str]], tuple[str, ...]]:
    """A function returning the values at `positions` as a tuple (itemgetter, always a tuple)."""
    if len(positions) > 1:
        return operator.itemgetter(*positions)
    return lambda values: tuple(values[position] for position in positions)


def custom_columns(imp: ContactImport) -> list[tuple[int, str]]:
    """(position, merge-tag name) of every column kept as a custom field, in the file's order.

    None is lost: a name two headers share (Precinct, PRECINCT) is numbered as the headers
    themselves are (precinct, precinct_2), and a header with no letter or digit in it (#, 電話)
    is named by its position (column_4).
    """
    mapped = set(imp.mapping.values())
    taken: set[str] = set()
    columns = []
    for position, header in enumerate(imp.headers):
        if header in mapped:
            continue
        base = contacts.custom_field_name(header) or f"column_{position + 1}"
        name, copy = base, 2
        while name in taken:
            name, copy = f"{base}_{copy}", copy + 1
        taken.add(name)
        columns.append((position, name))
    return columns


def cells(statement: Any) -> set[int]:
    """The E.164 numbers a query returns, as integers (compact in memory)."""
    return {int(cell[1:]) for cell in db.session.scalars(statement) if cell[1:].isdigit()}


def report(import_id: int, counts: dict[str, int]) -> bool:
    """Publish the live counters; False when Redis could not be reached.

    :raise ImportCancelled: if the organizer asked to stop."""
    try:
        pipe = queue.redis().pipeline()
        pipe.hset(progress_key(import_id), mapping=dict(counts))  # type: ignore[arg-type]
        pipe.expire(progress_key(import_id), KEY_TTL_SECONDS)
        pipe.exists(cancel_key(import_id))
        stop = pipe.execute()[-1]
    except RedisError:
        return False
    if stop:
        raise ImportCancelled
    return True


def cancel_requested(import_id: int) -> bool:
    try:
        return bool(queue.redis().exists(cancel_key(import_id)))
    except RedisError:
        return False


# --- Writing rows: COPY on PostgreSQL, executemany elsewhere ---------------------------------

CONTACT_COLUMNS = (
    "campaign_id, cell, first_name, last_name, zip, state, rule_states, time_zones,"
    " custom_fields, status, needs_reply, opt_out_suggested, updated_at"
)
# For a chunk whose separators are all real: every backslash and CR in it comes from a value.
CHUNK_ESCAPES = str.maketrans({"\\": "\\\\", "\r": "\\r", "\x00": ""})
LINE_TABS = len(CONTACT_COLUMNS.split(",")) - 1
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})


class Writer:
    """Inserts contact and rejection rows into the session's transaction (portable version).

    Used as a context manager around the load: rows may be buffered until a clean exit.
    """

    def __init__(self, imp: ContactImport) -> None:
        self.import_id = imp.id
        self.campaign_id = imp.campaign_id
        self.now = utcnow()
        self.custom_names: list[str] = []

    def __enter__(self) -> Writer:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        return None

    def contacts(self, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            db.session.execute(insert(Contact), [self.contact_dict(row) for row in rows])

    def contact_dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        cell, first, last, zip5, state, rule_states, zones, *custom = row
        return {
            "campaign_id": self.campaign_id,
            "cell": cell,
            "first_name": first,
            "last_name": last,
            "zip": zip5,
            "state": state,
            "rule_states": rule_states,
            "time_zones": zones,
            "custom_fields": dict(zip(self.custom_names, custom, strict=True)),
            "status": ContactStatus.NEW,
            "needs_reply": False,
            "opt_out_suggested": False,
            "updated_at": self.now,
        }

    def rejections(self, rows: list[tuple[int, str, list[str]]]) -> None:
        if rows:
            db.session.execute(
                insert(ImportRejection),
                [
                    {"import_id": self.import_id, "line": line, "reason": reason, "row": row}
                    for line, reason, row in rows
                ],
            )


class CopyWriter(Writer):
    """PostgreSQL: COPY through the session's own connection (same transaction).

    Contacts go through one COPY kept open for the whole load, sent by psycopg's writer thread
    so the server indexes rows on the other core while this one parses. Rejections are spooled
    to a temporary file (memory stays flat) and copied after the contacts.
    """

    def __init__(self, imp: ContactImport) -> None:
        super().__init__(imp)
        self.connection: Any = db.session.connection().connection.driver_connection
        self.suffix = f"\tnew\tf\tf\t{self.now.isoformat()}\n"
        self.stack = contextlib.ExitStack()

    def __enter__(self) -> CopyWriter:
        self.spool: IO[bytes] = tempfile.TemporaryFile()
        cursor = self.stack.enter_context(self.connection.cursor())
        statement = f"COPY contact ({CONTACT_COLUMNS}) FROM STDIN"
        self.copy = self.stack.enter_context(
            cursor.copy(statement, writer=QueuedLibpqWriter(cursor))
        )
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        try:
            if kind is not None:
                self.stack.__exit__(kind, error, trace)  # aborts the COPY
                return
            self.stack.close()  # ends the contacts COPY
            self.copy_rejections()
        finally:
            self.spool.close()

    def copy_rejections(self) -> None:
        self.spool.seek(0)
        statement = "COPY import_rejection (import_id, line, reason, row) FROM STDIN"
        with self.connection.cursor() as cursor, cursor.copy(statement) as copy:
            while block := self.spool.read(COPY_BYTES):
                copy.write(block)

    def contacts(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        line = self.line_template()
        encode = encode_basestring
        text = "".join([line % (*row[:7], *map(encode, row[7:])) for row in rows])
        # Values holding a tab or line break shift the columns: escape those chunks field by
        # field. Otherwise only backslashes (JSON escapes included) and CRs need escaping.
        if text.count("\t") != LINE_TABS * len(rows) or text.count("\n") != len(rows):
            text = "".join([self.escaped_line(row) for row in rows])
        elif "\\" in text or "\r" in text or "\x00" in text:
            text = text.translate(CHUNK_ESCAPES)
        self.copy.write(text.encode())

    def line_template(self) -> str:
        """One COPY line as a %-template: 7 text columns, then the custom fields' JSON."""
        fields = ",".join(f"{encode_basestring(name)}:%s" for name in self.custom_names)
        return f"{self.campaign_id}\t" + "%s\t" * 7 + "{" + fields + "}" + self.suffix

    def escaped_line(self, row: tuple[Any, ...]) -> str:
        custom = dict(zip(self.custom_names, row[7:], strict=True))
        values = [*row[:7], json.dumps(custom, ensure_ascii=False)]
        return (
            f"{self.campaign_id}\t"
            + "\t".join(value.translate(COPY_ESCAPES) for value in values)
            + self.suffix
        )

    def rejections(self, rows: list[tuple[int, str, list[str]]]) -> None:
        # JSON and repr() escape tabs and line breaks, so only backslashes and CRs need escaping.
        dumps = json.dumps
        text = "".join(
            [
                f"{self.import_id}\t{line}\t{reason}\t{dumps(row, ensure_ascii=False)}\n"
                for line, reason, row in rows
            ]
        )
        if text.count("\t") != 3 * len(rows) or text.count("\n") != len(rows):
            text = "".join(
                [
                    f"{self.import_id}\t{line}\t{reason.translate(COPY_ESCAPES)}\t"
                    + dumps(row, ensure_ascii=False).translate(COPY_ESCAPES)
                    + "\n"
                    for line, reason, row in rows
                ]
            )
        else:
            text = text.translate(CHUNK_ESCAPES)
        self.spool.write(text.encode())


def make_writer(imp: ContactImport) -> Writer:
    if db.session.get_bind().dialect.name == "postgresql":
        return CopyWriter(imp)
    return Writer(imp)
