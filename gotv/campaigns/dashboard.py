"""A campaign's numbers for its organizer, read at a glance: plain queries, no Flask.

What it shows: progress (contacts texted of all, who is left and when their hours open),
replies waiting now and the oldest wait, each volunteer's progress, sends and replies over
time in the organization's zone, delivery and its errors, and the answers along the script's
branches. Every figure has its meaning in MEANINGS, which the page shows beside it.

Cost with a million contacts, query by query:

- message counts by status come from `campaign_tally` (a few rows per campaign, summed over
  shards), never from scanning messages;
- contacts and texted count the campaign's contacts (`ix_contact_campaign_id`);
- who is left, by place, groups the untexted contacts on `ix_contact_new_places`, less those
  the numbers the organization may not text (`optouts.barred_numbers`) find among them;
- replies waiting read the partial index `ix_contact_waiting` (only waiting contacts), and the
  oldest wait probes each one's latest messages (`ix_message_contact_created`);
- opt-outs walk the organization's opt-outs and probe `uq_contact_campaign_id_cell` for each;
- the volunteers' counts group the campaign's contacts by volunteer;
- the timeline covers the campaign's messages of at most TIMELINE_DAYS
  (`ix_message_campaign_created`), and the error and refusal breakdowns the same span.

"Sent" means reached Twilio: accepted, sent, delivered or undelivered. A failed message may or
may not have reached Twilio, so it is counted on its own.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, scoped_session

from gotv.campaigns import content
from gotv.compliance import carrier_errors, hours, optouts
from gotv.models import (
    Campaign,
    CampaignTally,
    Contact,
    ContactStatus,
    Direction,
    Message,
    MessageStatus,
    OptOut,
    User,
)
from gotv.people import zones

# The timeline starts at the campaign's first message, at most this far back.
TIMELINE_DAYS = 14
# Under this span the timeline is by the hour; from it on, by the day.
HOURLY_SPAN = timedelta(hours=72)
# It covers at least this many hours, so a campaign's first hour is not one wide bar.
TIMELINE_MIN_HOURS = 12
REACHED_TWILIO = (
    MessageStatus.ACCEPTED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
)
# Written by a click or claimed by a pump, not yet answered by Twilio.
IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING)
UNKNOWN_REASON = "not in our table of Twilio errors"
UTC_ZONE = ZoneInfo("UTC")

# What each figure means, as the page says it beside the figure (and the JSON's keys).
MEANINGS = {
    "contacts": "Everyone on the campaign's lists.",
    "texted": "People who got their first text (one each, never two).",
    "left_now": "People not texted yet who may be texted right now: inside their hours, "
    "not opted out, not blocked.",
    "later": "People not texted yet who are outside their texting hours now; they open at "
    "the times listed.",
    "never": "People not texted yet whose state's rules never allow this campaign's hours "
    "(widen the hours, or they are never texted).",
    "unreachable": "People not texted yet who opted out or whose number cannot get texts.",
    "waiting": "Conversations where the voter's reply waits for a volunteer's answer.",
    "oldest_wait": "How long the reply that has waited longest has been waiting.",
    "in_flight": "Texts written by a volunteer's click that have not reached Twilio yet.",
    "sent": "Texts Twilio accepted: accepted, sent, delivered or undelivered. Every "
    "outbound text counts, first texts and replies alike.",
    "delivered": "Texts the carrier confirmed reached the phone.",
    "undelivered": "Texts Twilio sent that the carrier could not deliver.",
    "failed": "Texts Twilio refused or never sent; the error codes are below.",
    "refused": "Texts our last check stopped before Twilio (opted out, quiet hours...).",
    "replies": "Messages voters sent back, every one of them.",
    "reply_rate": "People who replied at least once, out of people texted.",
    "opt_outs": "The campaign's people whose number is opted out of your organization's texts.",
}


# A plain session, or the app's scoped one (db.session): either answers the queries below.
AnySession = Session | scoped_session[Any]


@dataclass(frozen=True)
class ErrorCount:
    """Failed or undelivered messages with one Twilio error code (None: Twilio gave none)."""

    code: int | None
    count: int

    @property
    def reason(self) -> str:
        entry = carrier_errors.lookup(self.code)
        if entry is not None:
            return entry.reason
        return "no error code" if self.code is None else UNKNOWN_REASON


@dataclass(frozen=True)
class VolunteerProgress:
    """One volunteer's people texted, replies from them, and what they hold now."""

    name: str
    texted: int
    replies: int
    waiting: int = 0  # their conversations waiting for an answer now
    holding: int = 0  # untexted contacts in their batch now


@dataclass(frozen=True)
class Bucket:
    """Outbound messages written and inbound ones received from `start` (an hour or a day in
    the organization's zone)."""

    start: datetime
    sends: int
    replies: int


@dataclass(frozen=True)
class Timeline:
    """Sends and replies over time, by hour or by day, in the organization's zone."""

    buckets: list[Bucket]
    hourly: bool
    zone: ZoneInfo

    @property
    def unit(self) -> str:
        return "hour" if self.hourly else "day"

    def label(self, bucket: Bucket) -> str:
        return bucket.start.strftime("%b %d %H:00" if self.hourly else "%a %b %d")


@dataclass(frozen=True)
class Opening:
    """People not texted yet who open at the same moment: `opens_at` (UTC), and the time it
    is then in their own zone."""

    count: int
    opens_at: datetime
    their_time: str


@dataclass(frozen=True)
class Progress:
    """Who is left to text: now, later (by when), never, or not at all."""

    left_now: int = 0
    later: list[Opening] = field(default_factory=list)
    never: int = 0
    unreachable: int = 0

    @property
    def later_total(self) -> int:
        return sum(opening.count for opening in self.later)


@dataclass(frozen=True)
class Waiting:
    """Replies waiting now: how many conversations, and since when the oldest (UTC)."""

    count: int = 0
    since: datetime | None = None

    def age(self, now: datetime) -> timedelta | None:
        return None if self.since is None else max(timedelta(0), now - self.since)


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows; totals are all-time, breakdowns cover `since`..now."""

    contacts: int
    texted: int
    replied_contacts: int
    opt_outs: int
    by_status: dict[str, int]
    since: datetime
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    progress: Progress = field(default_factory=Progress)
    waiting: Waiting = field(default_factory=Waiting)
    errors: list[ErrorCount] = field(default_factory=list)
    refusals: list[tuple[str, int]] = field(default_factory=list)
    volunteers: list[VolunteerProgress] = field(default_factory=list)
    timeline: Timeline | None = None
    survey: list[content.QuestionResult] = field(default_factory=list)

    def status(self, *statuses: MessageStatus) -> int:
        return sum(self.by_status.get(status.value, 0) for status in statuses)

    @property
    def sent(self) -> int:
        return self.status(*REACHED_TWILIO)

    @property
    def delivered(self) -> int:
        return self.status(MessageStatus.DELIVERED)

    @property
    def undelivered(self) -> int:
        return self.status(MessageStatus.UNDELIVERED)

    @property
    def failed(self) -> int:
        return self.status(MessageStatus.FAILED)

    @property
    def refused(self) -> int:
        return self.status(MessageStatus.REFUSED)

    @property
    def in_flight(self) -> int:
        return self.status(*IN_FLIGHT)

    @property
    def replies(self) -> int:
        return self.status(MessageStatus.RECEIVED)

    @property
    def reply_rate(self) -> float:
        """Contacts who replied / contacts texted, 0.0 before anyone is texted."""
        return self.replied_contacts / self.texted if self.texted else 0.0

    @property
    def texted_share(self) -> float:
        """Contacts texted / all contacts, 0.0 for an empty list."""
        return self.texted / self.contacts if self.contacts else 0.0

    @property
    def oldest_wait_minutes(self) -> int | None:
        age = self.waiting.age(self.now)
        return None if age is None else int(age.total_seconds() // 60)

    def totals(self) -> dict[str, int | float]:
        """The headline numbers, by the names the page and its JSON share."""
        return {
            "contacts": self.contacts,
            "texted": self.texted,
            "in_flight": self.in_flight,
            "sent": self.sent,
            "delivered": self.delivered,
            "undelivered": self.undelivered,
            "failed": self.failed,
            "refused": self.refused,
            "replies": self.replies,
            "replied_contacts": self.replied_contacts,
            "reply_rate": round(self.reply_rate, 4),
            "opt_outs": self.opt_outs,
        }

    def as_json(self, zone: ZoneInfo = UTC_ZONE) -> dict[str, Any]:
        """The live numbers, times in ISO 8601 with the zone's offset."""
        return {
            **self.totals(),
            "texted_share": round(self.texted_share, 4),
            "left_now": self.progress.left_now,
            "later": self.progress.later_total,
            "never": self.progress.never,
            "unreachable": self.progress.unreachable,
            "openings": [
                {
                    "count": opening.count,
                    "opens_at": zones.iso(opening.opens_at, zone),
                    "their_time": opening.their_time,
                }
                for opening in self.progress.later
            ],
            "waiting": self.waiting.count,
            "oldest_wait_since": zones.iso(self.waiting.since, zone) or None,
            "oldest_wait_minutes": self.oldest_wait_minutes,
            "since": zones.iso(self.since, zone),
        }


def build(
    session: AnySession, campaign: Campaign, now: datetime | None = None, zone: ZoneInfo = UTC_ZONE
) -> Dashboard:
    """The campaign's whole dashboard as of `now` (default: the current time), its timeline
    in `zone`."""
    now = now or datetime.now(UTC)
    board = live(session, campaign, now)
    timeline = build_timeline(session, campaign, now, zone)
    since = timeline.buckets[0].start.astimezone(UTC) if timeline.buckets else board.since
    return replace(
        board,
        since=since,
        errors=error_counts(session, campaign, since),
        refusals=refusal_counts(session, campaign, since),
        volunteers=volunteer_progress(session, campaign),
        timeline=timeline,
        survey=content.survey_results(session, campaign),
    )


def live(session: AnySession, campaign: Campaign, now: datetime | None = None) -> Dashboard:
    """The numbers the page refreshes: totals, progress and replies waiting."""
    now = now or datetime.now(UTC)
    contacts, texted = contact_counts(session, campaign)
    return Dashboard(
        contacts=contacts,
        texted=texted,
        replied_contacts=replied_contacts(session, campaign),
        opt_outs=opt_out_count(session, campaign),
        by_status=tally(session, campaign),
        since=now - timedelta(days=TIMELINE_DAYS),
        now=now,
        progress=progress(session, campaign, now),
        waiting=waiting(session, campaign),
    )


def tally(session: AnySession, campaign: Campaign) -> dict[str, int]:
    """The campaign's message count for each status, from the triggers' sharded tally."""
    rows = session.execute(
        select(CampaignTally.status, func.sum(CampaignTally.count))
        .where(CampaignTally.campaign_id == campaign.id)
        .group_by(CampaignTally.status)
    )
    return {status: int(count) for status, count in rows if count}


def contact_counts(session: AnySession, campaign: Campaign) -> tuple[int, int]:
    """(all contacts, contacts texted) of the campaign."""
    rows = dict(
        session.execute(
            select(Contact.status, func.count())
            .where(Contact.campaign_id == campaign.id)
            .group_by(Contact.status)
        ).all()
    )
    return sum(rows.values()), rows.get(ContactStatus.TEXTED, 0)


def replied_contacts(session: AnySession, campaign: Campaign) -> int:
    """Contacts of the campaign who sent at least one reply, ever.

    Reads only the campaign's replies, through the partial index `ix_message_campaign_replies`.
    """
    return (
        session.scalar(
            select(func.count(func.distinct(Message.contact_id))).where(
                Message.campaign_id == campaign.id, Message.direction == Direction.INBOUND
            )
        )
        or 0
    )


def opt_out_count(session: AnySession, campaign: Campaign) -> int:
    """The campaign's contacts whose number is opted out of the organization's texts."""
    return (
        session.scalar(
            select(func.count())
            .select_from(OptOut)
            .join(Contact, and_(Contact.cell == OptOut.cell, Contact.campaign_id == campaign.id))
            .where(OptOut.organization_id == campaign.organization_id)
        )
        or 0
    )


def progress(session: AnySession, campaign: Campaign, now: datetime) -> Progress:
    """Who is left to text, by place (zones and state rules): open now, opening later (when,
    soonest first), never in the campaign's hours, or not textable at all.

    The untexted are counted by place from `ix_contact_new_places` alone; those who cannot be
    texted are found from the organization's opt-outs and blocked numbers, each probing
    `uq_contact_campaign_id_cell`, and from the few set aside for the number policy, so no
    contact's number is checked one by one.
    """
    untexted = (Contact.campaign_id == campaign.id, Contact.status == ContactStatus.NEW)
    places = Counter(
        {
            (zones_of, states): count
            for zones_of, states, count in session.execute(
                select(Contact.time_zones, Contact.rule_states, func.count())
                .where(*untexted)
                .group_by(Contact.time_zones, Contact.rule_states)
            )
        }
    )
    unreachable: Counter[tuple[str, str]] = Counter()
    for statement in unreachable_by_place(campaign):
        for zones_of, states, count in session.execute(statement):
            unreachable[(zones_of, states)] += count
    left_now = never = 0
    later: Counter[tuple[datetime, str]] = Counter()
    start, end = campaign.window_start_hour, campaign.window_end_hour
    for (zones_of, states), count in (places - unreachable).items():
        try:
            opens = hours.next_opening(
                zones_of, now, start, end, state=states, trust_zip=campaign.trust_zip_alone
            )
        except ValueError:
            never += count
            continue
        if opens <= now:
            left_now += count
        else:
            their = opens.astimezone(hours.zones_of(zones_of, campaign.trust_zip_alone)[0])
            later[(opens.astimezone(UTC), their.strftime("%I:%M %p").lstrip("0"))] += count
    openings = [Opening(count, at, their) for (at, their), count in sorted(later.items())]
    return Progress(left_now, openings, never, sum(unreachable.values()))


def unreachable_by_place(campaign: Campaign) -> tuple[Any, Any]:
    """The campaign's untexted contacts whose number may not be texted, by place: those the
    organization's opt-outs and blocks bar, then the others set aside for the number policy
    (`Contact.refused`, from `ix_contact_refused`)."""
    barred = optouts.barred_numbers(campaign.organization_id)
    untexted = (Contact.campaign_id == campaign.id, Contact.status == ContactStatus.NEW)
    by_place = (Contact.time_zones, Contact.rule_states)
    return (
        select(*by_place, func.count())
        .join(barred, barred.c.cell == Contact.cell)
        .where(*untexted)
        .group_by(*by_place),
        select(*by_place, func.count())
        .where(
            *untexted,
            Contact.refused.is_not(None),
            optouts.may_be_texted(campaign.organization_id, Contact.cell),
        )
        .group_by(*by_place),
    )


def waiting(session: AnySession, campaign: Campaign) -> Waiting:
    """Conversations waiting for a volunteer's answer now, and since when the oldest waits:
    the earliest reply that came after the conversation's last outbound text."""
    count = (
        session.scalar(
            select(func.count())
            .select_from(Contact)
            .where(Contact.campaign_id == campaign.id, Contact.needs_reply.is_(True))
        )
        or 0
    )
    if not count:
        return Waiting()
    last_out = (
        select(func.max(Message.created_at))
        .where(Message.contact_id == Contact.id, Message.direction == Direction.OUTBOUND)
        .correlate(Contact)
        .scalar_subquery()
    )
    first_unanswered = (
        select(func.min(Message.created_at))
        .where(
            Message.contact_id == Contact.id,
            Message.direction == Direction.INBOUND,
            Message.created_at > func.coalesce(last_out, datetime(1970, 1, 1, tzinfo=UTC)),
        )
        .correlate(Contact)
        .scalar_subquery()
    )
    rows = session.execute(
        select(first_unanswered).where(
            Contact.campaign_id == campaign.id, Contact.needs_reply.is_(True)
        )
    ).scalars()
    moments = [as_aware(moment) for moment in rows if moment is not None]
    return Waiting(count, min(moments) if moments else None)


def as_aware(moment: datetime | str) -> datetime:
    """A timestamp read through a subquery, which skips the Timestamp type: aware in UTC."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def in_span(campaign: Campaign, since: datetime) -> ColumnElement[bool]:
    return and_(Message.campaign_id == campaign.id, Message.created_at >= since)


def error_counts(session: AnySession, campaign: Campaign, since: datetime) -> list[ErrorCount]:
    """Failed and undelivered messages written since `since`, by error code, most first."""
    rows = session.execute(
        select(Message.error_code, func.count())
        .where(
            in_span(campaign, since),
            Message.status.in_((MessageStatus.FAILED, MessageStatus.UNDELIVERED)),
        )
        .group_by(Message.error_code)
    )
    counts = [ErrorCount(code, count) for code, count in rows]
    return sorted(counts, key=lambda error: (-error.count, error.code or 0))


def refusal_counts(
    session: AnySession, campaign: Campaign, since: datetime
) -> list[tuple[str, int]]:
    """Messages written since `since` that our last gate refused, by reason, most first."""
    rows = session.execute(
        select(Message.refusal_reason, func.count())
        .where(in_span(campaign, since), Message.status == MessageStatus.REFUSED)
        .group_by(Message.refusal_reason)
    )
    counts = [(reason or "unknown", count) for reason, count in rows]
    return sorted(counts, key=lambda pair: (-pair[1], pair[0]))


def volunteer_progress(session: AnySession, campaign: Campaign) -> list[VolunteerProgress]:
    """Per volunteer, all time: people they texted and replies from them; and now, the
    conversations waiting for them and the untexted contacts in their batch.

    Replies carry no volunteer of their own; they belong to the contact's volunteer.
    """
    by_status = session.execute(
        select(Contact.texter_id, Contact.status, func.count())
        .where(Contact.campaign_id == campaign.id, Contact.texter_id.is_not(None))
        .group_by(Contact.texter_id, Contact.status)
    ).all()
    texted = {t: n for t, status, n in by_status if status == ContactStatus.TEXTED}
    holding = {t: n for t, status, n in by_status if status == ContactStatus.NEW}
    replies = dict(
        session.execute(
            select(Contact.texter_id, func.count())
            .select_from(Message)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.campaign_id == campaign.id, Message.direction == Direction.INBOUND)
            .group_by(Contact.texter_id)
        ).all()
    )
    waiting_on = dict(
        session.execute(
            select(Contact.texter_id, func.count())
            .where(Contact.campaign_id == campaign.id, Contact.needs_reply.is_(True))
            .group_by(Contact.texter_id)
        ).all()
    )
    ids = [user_id for user_id in {*texted, *holding, *replies} if user_id is not None]
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
    found = [
        VolunteerProgress(
            names[user_id],
            texted.get(user_id, 0),
            replies.get(user_id, 0),
            waiting_on.get(user_id, 0),
            holding.get(user_id, 0),
        )
        for user_id in ids
    ]
    return sorted(found, key=lambda v: (-v.texted, -v.replies, v.name))


# --- Sends and replies over time -------------------------------------------------------------


def build_timeline(
    session: AnySession, campaign: Campaign, now: datetime, zone: ZoneInfo
) -> Timeline:
    """Sends and replies from the campaign's first message (at most TIMELINE_DAYS back, at
    least TIMELINE_MIN_HOURS) to now, by the hour in `zone` when that spans less than
    HOURLY_SPAN, else by the day."""
    earliest = now - timedelta(days=TIMELINE_DAYS)
    first = session.scalar(select(func.min(Message.created_at)).where(in_span(campaign, earliest)))
    shortest = now - timedelta(hours=TIMELINE_MIN_HOURS - 1)
    start = min(as_aware(first), shortest) if first is not None else shortest
    hourly = now - start < HOURLY_SPAN
    local_start = zones.local(start, zone)
    if hourly:
        local_start = local_start.replace(minute=0, second=0, microsecond=0)
    else:
        local_start = local_start.replace(hour=0, minute=0, second=0, microsecond=0)
    since = local_start.astimezone(UTC)
    hour = hour_of(session, Message.created_at).label("hour")
    rows = session.execute(
        select(hour, Message.direction, func.count())
        .where(in_span(campaign, since))
        .group_by(hour, Message.direction)
    )
    counts: Counter[tuple[datetime | date, Direction]] = Counter()
    for utc_hour, direction, count in rows:
        local = as_utc(utc_hour).astimezone(zone)
        key: datetime | date = local if hourly else local.date()
        counts[(key, direction)] += count
    buckets = []
    for start_at in bucket_starts(local_start, now.astimezone(zone), hourly):
        key = start_at if hourly else start_at.date()
        buckets.append(
            Bucket(start_at, counts[(key, Direction.OUTBOUND)], counts[(key, Direction.INBOUND)])
        )
    return Timeline(buckets, hourly, zone)


def bucket_starts(first: datetime, last: datetime, hourly: bool) -> list[datetime]:
    """The starts of each hour (or day) from `first` to `last`, wall-clock in their zone."""
    starts = []
    moment = first
    while moment <= last:
        starts.append(moment)
        if hourly:  # step in UTC: a DST night has an hour twice, or not at all
            moment = (moment.astimezone(UTC) + timedelta(hours=1)).astimezone(first.tzinfo)
        else:
            moment = (moment + timedelta(days=1)).replace(hour=0)
    return starts


def hour_of(session: AnySession, column: Any) -> Any:
    """SQL for the UTC hour a timestamp falls in (each database spells it its own way)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def as_utc(value: datetime | str) -> datetime:
    """An hour from hour_of(): a naive UTC datetime (PostgreSQL) or its text (SQLite)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC)


# --- Charts: geometry here, markup in the template ----------------------------------------------

CHART_WIDTH, CHART_HEIGHT = 720, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 48, 712, 12, 200
SERIES = ("sends", "replies")
MAX_TICKS = 8
MAX_BAR_WIDTH = 28


@dataclass(frozen=True)
class Bar:
    series: str
    value: int
    x: float
    y: float
    width: float
    height: float
    label: str = ""


@dataclass(frozen=True)
class Tick:
    """An x-axis label: the hour or day (organization's zone) under the bar pair at `x`."""

    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Bars for each bucket's sends and replies, side by side, scaled to the busiest one."""

    bars: list[Bar]
    ticks: list[Tick]
    top: int  # the value at the top of the y axis
    unit: str = "hour"
    zone: str = "UTC"

    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = PLOT_LEFT
    right: int = PLOT_RIGHT
    plot_top: int = PLOT_TOP
    bottom: int = PLOT_BOTTOM


def chart(timeline: Timeline | None) -> Chart:
    """Two bars per bucket (sends, then replies); an empty bucket's bars have zero height."""
    buckets = timeline.buckets if timeline else []
    top = max([1, *(max(bucket.sends, bucket.replies) for bucket in buckets)])
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(len(buckets), 1)
    bar_width = min(slot * 0.4, MAX_BAR_WIDTH)
    every = max(1, -(-len(buckets) // MAX_TICKS))
    bars, ticks = [], []
    for n, bucket in enumerate(buckets):
        slot_left = PLOT_LEFT + n * slot
        label = timeline.label(bucket) if timeline else ""
        for offset, series in enumerate(SERIES):
            value = getattr(bucket, series)
            height = (PLOT_BOTTOM - PLOT_TOP) * value / top
            x = slot_left + (slot - 2 * bar_width) / 2 + offset * bar_width
            bars.append(
                Bar(
                    series,
                    value,
                    round(x, 2),
                    round(PLOT_BOTTOM - height, 2),
                    round(bar_width, 2),
                    round(height, 2),
                    label,
                )
            )
        if n % every == 0 and timeline is not None:
            short = bucket.start.strftime("%H:00" if timeline.hourly else "%b %d")
            if timeline.hourly and bucket.start.hour == 0 or n == 0 and timeline.hourly:
                short = bucket.start.strftime("%a %H:00")
            ticks.append(Tick(round(slot_left + slot / 2, 2), short))
    unit = timeline.unit if timeline else "hour"
    zone_name = str(timeline.zone) if timeline else "UTC"
    return Chart(bars, ticks, top, unit, zone_name)


BAR_CHART_WIDTH = 480
LABEL_WIDTH = 0  # labels sit above their bars, so long answers wrap on a phone
BAR_HEIGHT, BAR_GAP = 18, 26


@dataclass(frozen=True)
class AnswerBar:
    label: str
    count: int
    share: float  # of the question's answers
    width: float  # of BAR_CHART_WIDTH
    y: float


@dataclass(frozen=True)
class SurveyChart:
    """A question's answers as horizontal bars, scaled to its most chosen answer."""

    result: content.QuestionResult
    bars: list[AnswerBar]
    width: int = BAR_CHART_WIDTH

    @property
    def height(self) -> int:
        return len(self.bars) * BAR_GAP + 4


def survey_charts(results: list[content.QuestionResult]) -> list[SurveyChart]:
    """One bar chart per question, in the tree's order."""
    charts = []
    for result in results:
        largest = max(1, result.largest)
        bars = [
            AnswerBar(
                choice.label,
                choice.count,
                choice.count / result.total if result.total else 0.0,
                round(BAR_CHART_WIDTH * choice.count / largest, 2),
                n * BAR_GAP + 2,
            )
            for n, choice in enumerate(result.choices)
        ]
        charts.append(SurveyChart(result, bars))
    return charts
