"""A campaign's live numbers for its organizer: plain queries, no Flask.

Cost with a million contacts, query by query:

- message counts by status come from `campaign_tally` (a few rows per campaign, summed over
  shards), never from scanning messages;
- contacts and texted count the campaign's contacts (`ix_contact_campaign_id`);
- opt-outs walk the organization's opt-outs and probe `uq_contact_campaign_id_cell` for each;
- every breakdown (error codes, refusal reasons, volunteers, the chart) covers only the chart's
  window, WINDOW_HOURS back from now, so its size is bounded by recent traffic.

"Sent" means reached Twilio: accepted, sent, delivered or undelivered. A failed message may or
may not have reached Twilio, so it is counted on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, scoped_session

from gotv.campaigns import content
from gotv.compliance import carrier_errors
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

WINDOW_HOURS = 48
REACHED_TWILIO = (
    MessageStatus.ACCEPTED,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.UNDELIVERED,
)
# Written by a click or claimed by a pump, not yet answered by Twilio.
IN_FLIGHT = (MessageStatus.QUEUED, MessageStatus.SENDING)
UNKNOWN_REASON = "not in our table of Twilio errors"

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
    """One volunteer's first texts, and the replies to the contacts they texted."""

    name: str
    texted: int
    replies: int


@dataclass(frozen=True)
class Hour:
    """Outbound messages written and inbound messages received in one hour from `start`."""

    start: datetime
    sends: int
    replies: int


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows; totals are all-time, breakdowns cover `since`..now."""

    contacts: int
    texted: int
    replied_contacts: int
    opt_outs: int
    by_status: dict[str, int]
    since: datetime
    errors: list[ErrorCount] = field(default_factory=list)
    refusals: list[tuple[str, int]] = field(default_factory=list)
    volunteers: list[VolunteerProgress] = field(default_factory=list)
    hours: list[Hour] = field(default_factory=list)
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

    def as_json(self) -> dict[str, Any]:
        return {
            **self.totals(),
            "since": self.since.isoformat(),
            "errors": [
                {"code": error.code, "reason": error.reason, "count": error.count}
                for error in self.errors
            ],
            "refusals": [{"reason": reason, "count": count} for reason, count in self.refusals],
            "volunteers": [
                {"name": v.name, "texted": v.texted, "replies": v.replies} for v in self.volunteers
            ],
            "hours": [
                {"start": hour.start.isoformat(), "sends": hour.sends, "replies": hour.replies}
                for hour in self.hours
            ],
        }


def build(session: AnySession, campaign: Campaign, now: datetime | None = None) -> Dashboard:
    """The campaign's dashboard as of `now` (default: the current time)."""
    since = window_start(now or datetime.now(UTC))
    contacts, texted = contact_counts(session, campaign)
    return Dashboard(
        contacts=contacts,
        texted=texted,
        replied_contacts=replied_contacts(session, campaign),
        opt_outs=opt_out_count(session, campaign),
        by_status=tally(session, campaign),
        since=since,
        errors=error_counts(session, campaign, since),
        refusals=refusal_counts(session, campaign, since),
        volunteers=volunteer_progress(session, campaign, since),
        hours=hourly(session, campaign, since),
        survey=content.survey_results(session, campaign),
    )


def window_start(now: datetime) -> datetime:
    """The start of the chart's first hour: WINDOW_HOURS whole hours ending with this one."""
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return this_hour - timedelta(hours=WINDOW_HOURS - 1)


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


def in_window(campaign: Campaign, since: datetime) -> ColumnElement[bool]:
    return and_(Message.campaign_id == campaign.id, Message.created_at >= since)


def error_counts(session: AnySession, campaign: Campaign, since: datetime) -> list[ErrorCount]:
    """Failed and undelivered messages written since `since`, by error code, most first."""
    rows = session.execute(
        select(Message.error_code, func.count())
        .where(
            in_window(campaign, since),
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
        .where(in_window(campaign, since), Message.status == MessageStatus.REFUSED)
        .group_by(Message.refusal_reason)
    )
    counts = [(reason or "unknown", count) for reason, count in rows]
    return sorted(counts, key=lambda pair: (-pair[1], pair[0]))


def volunteer_progress(
    session: AnySession, campaign: Campaign, since: datetime
) -> list[VolunteerProgress]:
    """Per volunteer, since `since`: first texts they sent, replies from contacts they texted.

    Replies carry no volunteer of their own; they belong to the contact's volunteer.
    """
    texted = dict(
        session.execute(
            select(Message.texter_id, func.count())
            .where(in_window(campaign, since), Message.is_initial.is_(True))
            .group_by(Message.texter_id)
        ).all()
    )
    replies = dict(
        session.execute(
            select(Contact.texter_id, func.count())
            .select_from(Message)
            .join(Contact, Contact.id == Message.contact_id)
            .where(in_window(campaign, since), Message.direction == Direction.INBOUND)
            .group_by(Contact.texter_id)
        ).all()
    )
    ids = [user_id for user_id in {*texted, *replies} if user_id is not None]
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
    progress = [
        VolunteerProgress(names[user_id], texted.get(user_id, 0), replies.get(user_id, 0))
        for user_id in ids
    ]
    return sorted(progress, key=lambda v: (-v.texted, -v.replies, v.name))


def hourly(session: AnySession, campaign: Campaign, since: datetime) -> list[Hour]:
    """WINDOW_HOURS hours from `since`, each with its sends and replies (zero when quiet)."""
    hour = hour_of(session, Message.created_at).label("hour")
    rows = session.execute(
        select(hour, Message.direction, func.count())
        .where(in_window(campaign, since))
        .group_by(hour, Message.direction)
    )
    counts: dict[tuple[datetime, Direction], int] = {}
    for start, direction, count in rows:
        counts[as_utc(start), direction] = count
    starts = [since + timedelta(hours=n) for n in range(WINDOW_HOURS)]
    return [
        Hour(
            start,
            counts.get((start, Direction.OUTBOUND), 0),
            counts.get((start, Direction.INBOUND), 0),
        )
        for start in starts
    ]


def hour_of(session: AnySession, column: Any) -> Any:
    """SQL for the UTC hour a timestamp falls in (each database spells it its own way)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def as_utc(value: datetime | str) -> datetime:
    """An hour from hour_of(): a naive UTC datetime (PostgreSQL) or its text (SQLite)."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC)


# --- The chart: geometry here, markup in the template ----------------------------------------

CHART_WIDTH, CHART_HEIGHT = 720, 240
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 48, 712, 12, 200
SERIES = ("sends", "replies")
LABEL_EVERY_HOURS = 6


@dataclass(frozen=True)
class Bar:
    series: str
    value: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Tick:
    """An x-axis label: the hour (UTC) under the bar pair at `x`."""

    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    """Bars for each hour's sends and replies, side by side, scaled to the busiest hour."""

    bars: list[Bar]
    ticks: list[Tick]
    top: int  # the value at the top of the y axis

    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT
    left: int = PLOT_LEFT
    right: int = PLOT_RIGHT
    plot_top: int = PLOT_TOP
    bottom: int = PLOT_BOTTOM


def chart(hours: list[Hour]) -> Chart:
    """Two bars per hour (sends, then replies); an empty hour's bars have zero height."""
    top = max([1, *(max(hour.sends, hour.replies) for hour in hours)])
    slot = (PLOT_RIGHT - PLOT_LEFT) / max(len(hours), 1)
    bar_width = slot * 0.4
    bars, ticks = [], []
    for n, hour in enumerate(hours):
        slot_left = PLOT_LEFT + n * slot
        for offset, series in enumerate(SERIES):
            value = getattr(hour, series)
            height = (PLOT_BOTTOM - PLOT_TOP) * value / top
            x = slot_left + slot * 0.1 + offset * bar_width
            bars.append(
                Bar(
                    series,
                    value,
                    round(x, 2),
                    round(PLOT_BOTTOM - height, 2),
                    round(bar_width, 2),
                    round(height, 2),
                )
            )
        if hour.start.hour % LABEL_EVERY_HOURS == 0:
            ticks.append(Tick(round(slot_left + slot / 2, 2), hour.start.strftime("%H:00")))
    return Chart(bars, ticks, top)
