"""The outbox: queued message rows, and the send pump that takes them to Twilio exactly once.

A volunteer's click writes a `queued` message in the same transaction as the conversation change
(see texts.py). A send pump, run by a worker, repeatedly:

1. picks due queued rows (`FOR UPDATE SKIP LOCKED`, so pumps on many workers never collide),
   takes pacing tokens for their senders (pacing.py) and claims the rows it may send now with
   a conditional UPDATE `queued` -> `sending`: only the pump whose UPDATE moved a row sends it;
2. re-checks every rule at this last step (opt-out, blocked number, the textable-number
   policy, campaign, assignment, quiet hours and, for a first text, the closing buffer, age)
   and refuses what fails;
3. sends the rest concurrently over one pooled connection (sms.Connection);
4. records Twilio's answers in bulk: accepted, failed, back to `queued` with a backoff for an
   outage, or left in `sending` when Twilio may or may not have the message. Such a message is
   never sent again automatically: an admin sees it on the Operations page, where it can be
   settled against Twilio's own list of messages.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from redis.exceptions import RedisError
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Integer,
    Select,
    Table,
    Update,
    any_,
    bindparam,
    case,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql

from gotv.compliance import carrier_errors, hours, numbers, optouts
from gotv.compliance.carrier_errors import Action
from gotv.db import db
from gotv.edge import metrics, queue, sms
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    Message,
    MessageKind,
    MessageStatus,
    Organization,
    Role,
    Sender,
    User,
    utcnow,
)
from gotv.people import audit
from gotv.texting import pacing, senders
from gotv.texting.texts import CONFIRMATION_SECONDS, MAX_VALIDITY_SECONDS

log = logging.getLogger(__name__)

# How long a queued message may wait (an outage, a busy sender) before it is too late to send:
# a confirmation must arrive within five minutes of the opt-out; anything else within the hour.
MAX_AGE = {MessageKind.OPT_OUT_CONFIRMATION: timedelta(seconds=CONFIRMATION_SECONDS)}
DEFAULT_MAX_AGE = timedelta(hours=1)
# Backoff between attempts after an outage or a 429, by attempt number.
BACKOFF_SECONDS = (5, 15, 30, 60)
# A message in `sending` this long was left by a pump that died: an admin must settle it.
STUCK_AFTER = timedelta(minutes=5)

SenderKey = tuple[int, str]  # (organization id, sender address; "" is the default sender)


@dataclass(frozen=True)
class Outgoing:
    """A claimed message that passed the last gate: everything its send needs, detached."""

    id: int
    to: str
    body: str
    sender: str
    validity: int
    smart_encoding: bool
    account: sms.Account  # the Twilio account it goes through


@dataclass(frozen=True)
class Result:
    """What Twilio answered for one message, sent through the account `account_sid`."""

    message_id: int
    account_sid: str = ""
    accepted: sms.Accepted | None = None
    error: sms.SendError | None = None


# --- Claiming ------------------------------------------------------------------------------


@dataclass
class Claim:
    """The messages one claim took, and the senders that must wait (until when, in seconds)."""

    outgoing: list[Outgoing]
    throttled: dict[SenderKey, float]
    more_waiting: bool
    refused: int = 0  # claimed, then refused by the last gate (and recorded so)


def claim(
    limit: int,
    now: datetime,
    throttled: Iterable[SenderKey] = (),
    only_ids: Sequence[int] | None = None,
    holder: str | None = None,
) -> Claim:
    """Claim up to `limit` due queued messages that their senders' pace allows, in one commit.

    A `holder` (a pump) also takes a request slot of the message's Twilio account for each
    message it claims, and must give it back when Twilio answers (`pacing.release`). Refused
    messages are recorded as such; the rest come back ready to send. `more_waiting` is true
    when due messages were left behind for lack of room (not of tokens).
    """
    query = (
        select(Message.id, Message.organization_id, Message.sender)
        .where(Message.status == MessageStatus.QUEUED)
        .where((Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= now))
        .order_by(Message.id)
        .limit(limit + 1)
        .with_for_update(skip_locked=True)
    )
    skipped = list(throttled)
    if skipped:
        query = query.where(tuple_(Message.organization_id, Message.sender).not_in(skipped))
    if only_ids is not None:
        query = query.where(Message.id.in_(only_ids))
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_WALK_THE_QUEUE_PG)
    rows = db.session.execute(query).all()
    more_waiting = len(rows) > limit
    by_sender: dict[SenderKey, list[int]] = defaultdict(list)
    for message_id, organization_id, sender in rows[:limit]:
        by_sender[(organization_id or 0, sender)].append(message_id)
    allowed, waits = pace(by_sender, now, holder)
    claimed: list[GateRow] = []
    for account_sid, ids in allowed.items():
        claimed += claim_rows(ids, now, account_sid)
    outgoing = gate(sorted(claimed, key=lambda row: row.id), now)
    db.session.commit()
    return Claim(outgoing, waits, more_waiting, refused=len(claimed) - len(outgoing))


# Until autovacuum next analyzes the table, PostgreSQL believes the queued-message index
# holds what it held then: after a burst of clicks or an outage's backlog that is a few rows
# where there are 100,000. It then plans the claim as a bitmap scan that reads and sorts every
# queued row instead of walking the index to the first few, many times slower.
# Without bitmap scans, for this transaction only, the index walk is the plan whatever the
# statistics say.
_WALK_THE_QUEUE_PG = text("SELECT set_config('enable_bitmapscan', 'off', true)")


# How long a sender waits when its account has no request slot free: about one answer's time.
SLOT_WAIT_SECONDS = 0.05


def pace(
    by_sender: dict[SenderKey, list[int]], now: datetime, holder: str | None = None
) -> tuple[dict[str | None, list[int]], dict[SenderKey, float]]:
    """The message ids their limits allow now, by the Twilio account they go through (None:
    refused by the gate, which says why), and how long each limited sender waits.

    A message counts against its sender's, its organization's and its account's limits; with
    a `holder`, it also takes one of its account's request slots.
    """
    allowed: dict[str | None, list[int]] = defaultdict(list)
    waits: dict[SenderKey, float] = {}
    redis = queue.redis()
    for key, ids in by_sender.items():
        account = senders.sending_account(*key) if key[0] else senders.NO_SENDER
        if isinstance(account, str):
            allowed[None] += ids  # the gate refuses these, saying why
            continue
        sid = account.credentials.account_sid
        cooling = pacing.cooling(redis, sid)
        if cooling:
            waits[key] = cooling
            continue
        slots = len(ids)
        if holder is not None:
            slots = pacing.acquire(redis, sid, holder, len(ids), account.concurrency)
            if not slots:
                waits[key] = SLOT_WAIT_SECONDS
                continue
        grant = pacing.take(redis, limits_for(key, account, now), slots, now)
        if holder is not None and grant.granted < slots:
            pacing.release(redis, sid, holder, slots - grant.granted)
        allowed[sid] += ids[: grant.granted]
        if grant.granted < len(ids):
            waits[key] = max(grant.retry_after, SLOT_WAIT_SECONDS if slots < len(ids) else 0.001)
    return allowed, waits


@dataclass(frozen=True)
class Pace:
    """What the organizer set for a sender and its organization (None: no limit)."""

    per_second: float | None = None
    daily_cap: int | None = None
    organization_per_second: float | None = None


def limits_for(key: SenderKey, account: sms.Account, now: datetime) -> list[pacing.Limit]:
    """The limits a send from this sender, through this account, counts against now."""
    organization_id, address = key
    pace = pace_of(key)
    name = f"sender:{organization_id}:{address or 'default'}"
    limits = []
    if pace.per_second:
        limits.append(pacing.Limit.rate(name, pace.per_second))
    if pace.daily_cap is not None:
        limits.append(pacing.Limit.daily_cap(name, pace.daily_cap, now))
    if pace.organization_per_second:
        organization = f"organization:{organization_id}"
        limits.append(pacing.Limit.rate(organization, pace.organization_per_second))
    whole_account = f"account:{account.credentials.account_sid}"
    if account.per_second:
        limits.append(pacing.Limit.rate(whole_account, account.per_second))
    if account.daily_cap is not None:
        limits.append(pacing.Limit.daily_cap(whole_account, account.daily_cap, now))
    return limits


# Settings change rarely and pumps ask on every claim: read them again every few seconds.
PACE_CACHE_SECONDS = 5.0
_limits_cache: dict[SenderKey, tuple[float, Pace]] = {}


def pace_of(key: SenderKey) -> Pace:
    """The sender's and its organization's pace, cached for PACE_CACHE_SECONDS."""
    cached = _limits_cache.get(key)
    if cached is None or cached[0] < time.monotonic():
        cached = (time.monotonic() + PACE_CACHE_SECONDS, _load_pace(key))
        _limits_cache[key] = cached
    return cached[1]


def _load_pace(key: SenderKey) -> Pace:
    organization_id, address = key
    sender = db.session.scalars(
        select(Sender).where(Sender.organization_id == organization_id, Sender.address == address)
    ).first()
    organization = db.session.get(Organization, organization_id)
    return Pace(
        per_second=sender.per_second if sender else None,
        daily_cap=sender.daily_cap if sender else None,
        organization_per_second=organization.per_second if organization else None,
    )


def claim_rows(
    message_ids: list[int], now: datetime, account_sid: str | None = None
) -> Sequence[GateRow]:
    """Move these messages from `queued` to `sending`, recording the Twilio account they go
    through; the gate rows of the ones this call moved.

    On PostgreSQL the claim and the reads of the last gate are one statement; elsewhere the gate
    rows are read after the claim, in the same transaction.
    """
    if not message_ids:
        return []
    params = {"ids": message_ids, "now": now, "account": account_sid}
    if db.session.get_bind().dialect.name == "postgresql":
        return db.session.execute(_CLAIM_AND_READ_PG, params).all()
    claimed = list(db.session.execute(_CLAIM, params).scalars())
    if not claimed:
        return []
    return db.session.execute(_GATE_ROWS.where(Message.id.in_(claimed))).all()


# --- The last gate -------------------------------------------------------------------------


class GateRow(Protocol):
    """Everything the last gate reads about a claimed message: the message, its contact,
    campaign and author, and whether its number may be texted (`_gate_rows`)."""

    id: int
    organization_id: int | None
    to_number: str
    kind: MessageKind
    is_initial: bool
    texter_id: int | None
    body: str
    sender: str
    created_at: datetime
    contact_id: int | None
    assigned_texter_id: int | None
    time_zones: str
    rule_states: str
    campaign_status: CampaignStatus | None
    window_start_hour: int
    window_end_hour: int
    smart_encoding: bool
    trust_zip_alone: bool
    texts_us_territories: bool | None
    texter_role: Role | None
    opted_out: bool
    blocked: bool


# What the gate reads of the message row itself.
_GATE_READS = (
    "id",
    "organization_id",
    "to_number",
    "kind",
    "is_initial",
    "texter_id",
    "body",
    "sender",
    "created_at",
    "contact_id",
    "campaign_id",
)


def _claim(ids: ColumnElement[bool]) -> Update:
    """UPDATE the queued messages `ids` picks to `sending`, one more attempt each."""
    return (
        update(Message)
        .where(ids, Message.status == MessageStatus.QUEUED)
        .values(
            status=MessageStatus.SENDING,
            attempts=Message.attempts + 1,
            updated_at=bindparam("now"),
            account_sid=bindparam("account"),
        )
        .execution_options(synchronize_session=False)
    )


def _gate_rows(message: FromClause) -> Select[Any]:
    """The gate's rows (`GateRow`) for the messages of `message`: the message table itself, or
    the rows a claiming UPDATE returned."""
    m = message.c
    return (
        select(
            m.id,
            m.organization_id,
            m.to_number,
            m.kind,
            m.is_initial,
            m.texter_id,
            m.body,
            m.sender,
            m.created_at,
            Contact.id.label("contact_id"),
            Contact.texter_id.label("assigned_texter_id"),
            Contact.time_zones,
            Contact.rule_states,
            Campaign.status.label("campaign_status"),
            Campaign.window_start_hour,
            Campaign.window_end_hour,
            Campaign.smart_encoding,
            Campaign.trust_zip_alone,
            Organization.texts_us_territories,
            User.role.label("texter_role"),
            optouts.opted_out(m.organization_id, m.to_number).label("opted_out"),
            optouts.blocked(m.organization_id, m.to_number).label("blocked"),
        )
        .select_from(message)
        .outerjoin(Contact, Contact.id == m.contact_id)
        .outerjoin(Campaign, Campaign.id == m.campaign_id)
        .outerjoin(Organization, Organization.id == m.organization_id)
        .outerjoin(User, User.id == m.texter_id)
        .order_by(m.id)
    )


_MESSAGE = Message.__table__
assert isinstance(_MESSAGE, Table)
_CLAIM = _claim(Message.id.in_(bindparam("ids", expanding=True))).returning(Message.id)
_GATE_ROWS = _gate_rows(_MESSAGE)
# On PostgreSQL, the same rows read from the claiming UPDATE itself: one statement, one round
# trip (= ANY of one array: one plan whatever the number of ids).
_CLAIM_AND_READ_PG = _gate_rows(
    _claim(Message.id == any_(bindparam("ids", type_=postgresql.ARRAY(Integer))))
    .returning(*(_MESSAGE.c[name] for name in _GATE_READS))
    .cte("claimed")
)


def gate(rows: Sequence[GateRow], now: datetime) -> list[Outgoing]:
    """Check claimed messages against every rule; refuse the failures, return the rest."""
    checks = Checks()
    outgoing, refused = [], defaultdict(list)
    for row in rows:
        reason = checks.refusal_reason(row, now)
        if reason:
            refused[reason].append(row.id)
        else:
            outgoing.append(checks.outgoing(row, now))
    for reason, ids in refused.items():
        log.info("refused=%s messages=%s", reason, ids)
        metrics.REFUSED.labels(reason).inc(len(ids))
        db.session.execute(
            update(Message)
            .where(Message.id.in_(ids))
            .values(status=MessageStatus.REFUSED, refusal_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    return outgoing


@dataclass
class Checks:
    """The rules of the last gate, with each place's texting window computed once per batch."""

    closes: dict[tuple[Any, ...], datetime | None] = field(default_factory=dict)
    opens_to_initial: dict[tuple[Any, ...], bool] = field(default_factory=dict)

    def refusal_reason(self, row: GateRow, now: datetime) -> str | None:
        """Why this message must not go out now; None if it may.

        The confirmation of an opt-out goes to an opted-out number by definition (and to
        whatever number wrote the opt-out); nothing else does. Automatic replies (confirmation,
        help) skip the campaign and assignment checks, never the carrier's blocks, the
        recipient's hours or their age. A first text is also refused in the last
        CLOSING_BUFFER of the recipient's window, as the click refuses it.
        """
        if row.contact_id is None or row.campaign_status is None or row.organization_id is None:
            return "no_contact"
        refusal = self.recipient_refusal(row) or self.campaign_refusal(row)
        if refusal:
            return refusal
        if now - row.created_at > MAX_AGE.get(row.kind, DEFAULT_MAX_AGE):
            return "expired"
        if self.closes_at(row, now) is None:
            return "quiet_hours"
        if row.is_initial and not self.open_to_initial(row, now):
            return "closing_buffer"
        account = senders.sending_account(row.organization_id, row.sender)
        if isinstance(account, str):
            return account
        return None

    @staticmethod
    def recipient_refusal(row: GateRow) -> str | None:
        """Why the number may not get this message: opted out (unless it is the confirmation),
        refused by the textable-number policy, or blocked by the carrier."""
        if row.kind != MessageKind.OPT_OUT_CONFIRMATION:
            if row.opted_out:
                return "opted_out"
            untextable = numbers.check_stored(row.to_number, bool(row.texts_us_territories))
            if untextable is not None:
                return f"number_{untextable.value}"
        if row.blocked:
            return "undeliverable"
        return None

    @staticmethod
    def campaign_refusal(row: GateRow) -> str | None:
        """Why a volunteer's text may not go out: its campaign stopped, or the conversation
        went to someone else (an organizer may still write in any)."""
        if row.kind != MessageKind.TEXT:
            return None
        if row.campaign_status != CampaignStatus.ACTIVE:
            return "campaign_not_active"
        sent_by_organizer = row.texter_role is not None and row.texter_role.is_organizer
        if row.assigned_texter_id != row.texter_id and not sent_by_organizer:
            return "contact_reassigned"
        return None

    @staticmethod
    def place(row: GateRow) -> tuple[Any, ...]:
        return (
            row.time_zones,
            row.rule_states,
            row.window_start_hour,
            row.window_end_hour,
            row.trust_zip_alone,
        )

    def closes_at(self, row: GateRow, now: datetime) -> datetime | None:
        """When the recipient's window closes (None: closed), computed once per kind of place."""
        place = self.place(row)
        if place not in self.closes:
            self.closes[place] = hours.closes_at(
                row.time_zones,
                now,
                row.window_start_hour,
                row.window_end_hour,
                state=row.rule_states,
                trust_zip=row.trust_zip_alone,
            )
        return self.closes[place]

    def open_to_initial(self, row: GateRow, now: datetime) -> bool:
        """Whether a first text may start a conversation now: the window with its closing
        buffer (`hours.is_open` with `initial`), once per kind of place."""
        place = self.place(row)
        if place not in self.opens_to_initial:
            self.opens_to_initial[place] = hours.is_open(
                row.time_zones,
                now,
                row.window_start_hour,
                row.window_end_hour,
                initial=True,
                state=row.rule_states,
                trust_zip=row.trust_zip_alone,
            )
        return self.opens_to_initial[place]

    def outgoing(self, row: GateRow, now: datetime) -> Outgoing:
        """The send of a message that passed, valid until its recipient's window closes.

        A confirmation also never waits past the five minutes the FCC allows it.
        """
        closes = self.closes_at(row, now)
        seconds = int((closes - now).total_seconds()) if closes else 1
        if row.kind == MessageKind.OPT_OUT_CONFIRMATION:
            seconds = min(seconds, CONFIRMATION_SECONDS)
        account = senders.sending_account(row.organization_id or 0, row.sender)
        assert not isinstance(account, str)  # refusal_reason said it may go
        return Outgoing(
            id=row.id,
            to=row.to_number,
            body=row.body,
            sender=row.sender,
            validity=max(1, min(MAX_VALIDITY_SECONDS, seconds)),
            smart_encoding=row.smart_encoding,
            account=account,
        )


# --- Recording Twilio's answers ------------------------------------------------------------


def record(results: list[Result], now: datetime) -> None:
    """Record a batch of Twilio's answers in one commit."""
    accepted = [result for result in results if result.accepted]
    if accepted:
        record_accepted(accepted, now)
        metrics.SENDS.labels("accepted").inc(len(accepted))
    for result in results:
        if result.error:
            record_error(result.message_id, result.error, now)
            metrics.SENDS.labels(outcome_of(result.error)).inc()
    db.session.commit()


def outcome_of(error: sms.SendError) -> str:
    """How a refused send is counted: retried later, uncertain (Twilio may have it), failed."""
    if error.retryable or carrier_errors.action_for(error.code) == Action.RETRY:
        return "retried"
    return "uncertain" if error.uncertain else "failed"


def record_accepted(results: list[Result], now: datetime) -> None:
    """Store SIDs; a status callback that came first has already moved the status further."""
    answers = [
        {
            "message_id": result.message_id,
            "sid": result.accepted.sid,
            "from_number": result.accepted.from_number,
            "segments": result.accepted.segments,
        }
        for result in results
        if result.accepted
    ]
    if db.session.get_bind().dialect.name == "postgresql":
        # One statement for the whole batch (and one firing of the tally trigger), not one each.
        db.session.execute(_RECORD_ACCEPTED_PG, {"now": now, **_columns(answers)})
        return
    table = Message.__table__
    assert isinstance(table, Table)
    statement = (
        update(table)
        .where(table.c.id == bindparam("message_id"))
        .values(
            twilio_sid=bindparam("sid"),
            from_number=bindparam("from_number"),
            segments=bindparam("segments"),
            sent_at=now,
            updated_at=now,
            status=case(
                (table.c.status == MessageStatus.SENDING.value, MessageStatus.ACCEPTED.value),
                else_=table.c.status,
            ),
        )
    )
    db.session.execute(statement, answers)


_RECORD_ACCEPTED_PG = text(
    """
    UPDATE message SET twilio_sid = answer.sid, from_number = answer.from_number,
        segments = answer.segments, sent_at = :now, updated_at = :now,
        status = CASE WHEN message.status = 'sending' THEN 'accepted' ELSE message.status END
    FROM unnest(CAST(:message_id AS integer[]), CAST(:sid AS text[]),
                CAST(:from_number AS text[]), CAST(:segments AS integer[]))
        AS answer(id, sid, from_number, segments)
    WHERE message.id = answer.id
    """
)


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


def record_error(message_id: int, error: sms.SendError, now: datetime) -> None:
    """Record what Twilio's refusal means for the message (and the number).

    An outage or a busy Twilio puts the message back in the queue with a backoff; an uncertain
    send stays in `sending` for an admin; anything else fails the message and applies the
    carrier error table.
    """
    message = db.session.get(Message, message_id)
    assert message is not None
    message.error_code = error.code
    if error.retryable or carrier_errors.action_for(error.code) == Action.RETRY:
        backoff = BACKOFF_SECONDS[min(message.attempts, len(BACKOFF_SECONDS)) - 1]
        message.status = MessageStatus.QUEUED
        message.next_attempt_at = now + timedelta(seconds=backoff)
        log.warning("message %s retried in %ss: %s", message_id, backoff, error)
    elif error.uncertain:
        log.error("message %s may or may not have been sent: %s", message_id, error)
    else:
        message.status = MessageStatus.FAILED
        log.info("message %s failed: %s %s", message_id, error.code, error)
        action = optouts.apply_carrier_error(message, error.code)
        heed(message.account_sid, action, now)
    if error.http_status == 429 and message.account_sid:
        cool_down(message.account_sid, TOO_MANY_REQUESTS_SECONDS)


# After Twilio's 429, the account's pumps wait this long before they claim for it again.
TOO_MANY_REQUESTS_SECONDS = 1.0
# After the carriers said the account went over its 10DLC rate (30022).
SLOW_DOWN_SECONDS = 60.0


def heed(account_sid: str | None, action: Action, now: datetime) -> None:
    """Hold the account's sends as a carrier error asks: a minute after 30022, until the
    carriers' next day after a spent daily cap."""
    if account_sid is None:
        return
    if action == Action.SLOW_DOWN:
        cool_down(account_sid, SLOW_DOWN_SECONDS)
    elif action == Action.PAUSE_FOR_THE_DAY:
        cool_down(account_sid, (pacing.next_carrier_midnight(now) - now).total_seconds())


def cool_down(account_sid: str, seconds: float) -> None:
    try:
        pacing.cool(queue.redis(), account_sid, seconds)
    except RedisError:
        log.warning("redis unavailable; account %s not cooled down", account_sid)


# --- The pump ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PumpSettings:
    status_callback: str  # the status webhook's URL; each message adds ?message=<id>
    concurrency: int = 100  # requests to Twilio in flight at once
    run_seconds: float = 60.0  # then stop claiming, finish, and leave the worker to other jobs
    flush_seconds: float = 0.02  # how long answers wait to be recorded together
    idle_wait_seconds: float = 2.0  # wait this long for a throttled sender, not longer
    # Set when the worker must stop (SIGTERM): claim nothing more, record the answers to what
    # is in flight (Twilio answers, or times out, within sms.HTTP_TIMEOUT_SECONDS), return.
    stop: threading.Event | None = field(default=None, compare=False)


async def pump(
    config: dict[str, Any], settings: PumpSettings, only_ids: Sequence[int] | None = None
) -> int:
    """Send queued messages until none is due (or `run_seconds` pass); returns how many sent.

    Runs in the worker's app context. A pump that finds more due messages than it has room for
    wakes another worker's pump, so every worker joins in when the queue is long.
    """
    async with sms.Connection(config, settings.concurrency) as twilio:
        return await Pump(twilio, settings, only_ids).run()


class Pump:
    """One pump's loop: claim while there is room, send, record answers in small batches."""

    def __init__(
        self, twilio: sms.Connection, settings: PumpSettings, only_ids: Sequence[int] | None
    ) -> None:
        self.twilio, self.settings, self.only_ids = twilio, settings, only_ids
        self.in_flight: set[asyncio.Task[Result]] = set()
        self.finished: list[asyncio.Task[Result]] = []  # ended, their answers not collected
        self.any_finished = asyncio.Event()
        self.answers: list[Result] = []
        self.throttled: dict[SenderKey, float] = {}  # until (monotonic time)
        self.sent = 0
        self.recruited = False
        self.failure: RedisError | None = None  # set when claiming failed: finish, then raise
        # Whose request slots this pump holds (pacing.acquire), and in which accounts.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.accounts: set[str] = set()

    async def run(self) -> int:
        deadline = time.monotonic() + self.settings.run_seconds
        last_flush = time.monotonic()
        while True:
            if self.settings.stop is not None and self.settings.stop.is_set():
                deadline = 0.0  # stopping: claim no more, finish what is in flight
            claimed, tried = self.try_claim(deadline)
            if self.in_flight:
                await self.wait_for_answers(self.settings.flush_seconds)
                self.collect()
            if self.answers and (
                not self.in_flight or time.monotonic() - last_flush >= self.settings.flush_seconds
            ):
                self.flush()
                last_flush = time.monotonic()
            if not self.in_flight and not claimed:
                if self.failure is not None:
                    break
                if not tried and time.monotonic() < deadline:
                    continue  # every send in flight ended in this wait: look for more work
                wait = self.next_unthrottle()
                if wait is None or wait > self.settings.idle_wait_seconds:
                    break
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(wait)
        if self.answers:
            self.flush()
        self.give_back_slots()
        if self.failure is not None:
            raise self.failure
        return self.sent

    def give_back_slots(self) -> None:
        """Whatever slots are still held (none when every answer came): give them back."""
        for account_sid in self.accounts:
            try:
                pacing.release(queue.redis(), account_sid, self.holder)
            except RedisError:
                log.warning("redis unavailable; slots of %s expire on their own", self.holder)

    def try_claim(self, deadline: float) -> tuple[int, bool]:
        """Claim more when there is room and time: (messages claimed, sent or refused, and
        whether it tried)."""
        if self.failure is not None or time.monotonic() >= deadline or not self.has_room():
            return 0, False
        try:
            return self.claim_more(), True
        except RedisError as error:
            # Pacing needs Redis. Stop claiming, but still record the answers to the requests
            # in flight: abandoning them would leave messages Twilio has in `sending`.
            log.error("redis failed mid-claim; finishing %d sends", len(self.in_flight))
            db.session.rollback()
            self.failure = error
            return 0, True

    def has_room(self) -> bool:
        """Claim when a quarter of the pump is free (or all of it), not for every free slot."""
        room = self.settings.concurrency - len(self.in_flight)
        return room >= max(1, self.settings.concurrency // 4) or not self.in_flight

    def claim_more(self) -> int:
        now_monotonic = time.monotonic()
        self.throttled = {k: t for k, t in self.throttled.items() if t > now_monotonic}
        batch = claim(
            self.settings.concurrency - len(self.in_flight),
            utcnow(),
            self.throttled,
            self.only_ids,
            self.holder,
        )
        for key, wait in batch.throttled.items():
            self.throttled[key] = now_monotonic + wait
        for outgoing in batch.outgoing:
            self.accounts.add(outgoing.account.credentials.account_sid)
            task = asyncio.create_task(self.send(outgoing))
            task.add_done_callback(self.on_finished)
            self.in_flight.add(task)
        metrics.PUMP_IN_FLIGHT.inc(len(batch.outgoing))
        if batch.more_waiting and not self.recruited and self.only_ids is None:
            self.recruited = queue.wake_senders()
        # Refused messages count as work done: a batch the last gate refused whole must not
        # look like an empty outbox, or the pump would stop with due messages behind it.
        return len(batch.outgoing) + batch.refused

    async def send(self, outgoing: Outgoing) -> Result:
        callback = f"{self.settings.status_callback}?message={outgoing.id}"
        account_sid = outgoing.account.credentials.account_sid
        try:
            accepted = await self.twilio.send(
                outgoing.account.credentials,
                outgoing.to,
                outgoing.body,
                callback,
                outgoing.validity,
                outgoing.sender,
                outgoing.smart_encoding,
            )
        except sms.SendError as error:
            return Result(outgoing.id, account_sid, error=error)
        return Result(outgoing.id, account_sid, accepted=accepted)

    def on_finished(self, task: asyncio.Task[Result]) -> None:
        self.finished.append(task)
        self.any_finished.set()

    async def wait_for_answers(self, timeout: float) -> None:
        """Until a send in flight has ended, or `timeout` seconds have passed.

        Each send says it ended through the one callback it was given when it started:
        asyncio.wait would add and remove a callback on every send in flight (hundreds) at
        every turn of this loop.
        """
        if self.finished:
            return
        self.any_finished.clear()
        try:
            async with asyncio.timeout(timeout):
                await self.any_finished.wait()
        except TimeoutError:
            pass

    def collect(self) -> None:
        finished, self.finished = self.finished, []
        for task in finished:
            self.in_flight.discard(task)
            self.answers.append(task.result())
        metrics.PUMP_IN_FLIGHT.dec(len(finished))

    def flush(self) -> None:
        answers, self.answers = self.answers, []
        record(answers, utcnow())
        accepted = [answer.message_id for answer in answers if answer.accepted]
        self.sent += len(accepted)
        if accepted:
            log.info("accepted=%d messages=%s", len(accepted), accepted)
        answered = Counter(answer.account_sid for answer in answers)
        try:
            for account_sid, count in answered.items():
                pacing.release(queue.redis(), account_sid, self.holder, count)
        except RedisError:
            log.warning("redis unavailable; slots of %s expire on their own", self.holder)

    def next_unthrottle(self) -> float | None:
        if not self.throttled:
            return None
        return max(0.0, min(self.throttled.values()) - time.monotonic())


def settle_stuck(message_id: int, user_id: int | None = None) -> MessageStatus | None:
    """Settle a message left in `sending` by asking Twilio whether it holds it.

    Found: it was sent, and is recorded so. Not found: back in the queue, to pass the last gate
    again (Twilio lists a message as soon as it accepts one). Returns the new status, or None
    when the message is not stuck in `sending`.
    """
    message = db.session.get(Message, message_id)
    if message is None or message.status != MessageStatus.SENDING:
        return None
    assert message.organization_id is not None
    credentials = (
        senders.credentials_for(message.account_sid)
        if message.account_sid
        else sms.default_credentials()
    )
    if credentials is None:
        raise sms.SendError(f"the Twilio account {message.account_sid} is no longer connected")
    since = message.updated_at - timedelta(minutes=1)
    found = [
        held
        for held in sms.find_sent(credentials, message.to_number, since)
        if held.body == message.body and not _is_known_sid(held.sid, message.id)
    ]
    if found:
        held = found[0]
        message.twilio_sid, message.from_number = held.sid, held.from_number
        message.segments, message.sent_at = held.segments, message.updated_at
        message.status = MessageStatus.ACCEPTED
    else:
        message.status, message.next_attempt_at = MessageStatus.QUEUED, None
    audit.record(
        message.organization_id,
        "message_settled",
        message.to_number,
        user_id,
        message_id=message.id,
        found_at_twilio=bool(found),
    )
    db.session.commit()
    return message.status


def _is_known_sid(sid: str, message_id: int) -> bool:
    """True when another message of ours already carries this SID."""
    return (
        db.session.scalar(
            select(Message.id).where(Message.twilio_sid == sid, Message.id != message_id)
        )
        is not None
    )


# A message in `sending` this long was left by a worker that died (a live pump records every
# answer within sms.HTTP_TIMEOUT_SECONDS): the sweeper settles it against Twilio's list.
SETTLE_AFTER = timedelta(minutes=2)


def settle_abandoned(now: datetime, limit: int = 100) -> int:
    """Settle (`settle_stuck`) up to `limit` messages left in `sending` for SETTLE_AFTER, the
    oldest first; how many. One whose Twilio cannot be asked now is left for the next sweep."""
    ids = db.session.scalars(
        select(Message.id)
        .where(Message.status == MessageStatus.SENDING, Message.updated_at < now - SETTLE_AFTER)
        .order_by(Message.updated_at)
        .limit(limit)
    ).all()
    settled = 0
    for message_id in ids:
        try:
            settled += settle_stuck(message_id) is not None
        except sms.SendError as error:
            db.session.rollback()
            log.warning("message %s not settled yet: %s", message_id, error)
    return settled


def stuck_messages(organization_id: int, now: datetime, limit: int = 200) -> list[Message]:
    """The organization's messages left in `sending` too long, oldest first."""
    return list(
        db.session.scalars(
            select(Message)
            .where(
                Message.organization_id == organization_id,
                Message.status == MessageStatus.SENDING,
                Message.updated_at < now - STUCK_AFTER,
            )
            .order_by(Message.updated_at)
            .limit(limit)
        )
    )


def due_messages_exist(now: datetime) -> bool:
    """True when some queued message is due: the sweeper then wakes a pump."""
    return (
        db.session.scalar(
            select(Message.id)
            .where(Message.status == MessageStatus.QUEUED)
            .where((Message.next_attempt_at.is_(None)) | (Message.next_attempt_at <= now))
            .limit(1)
        )
        is not None
    )
