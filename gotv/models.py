"""The data model: organizations, people, campaigns, contacts, messages and opt-outs.

State changes that must happen exactly once (texting a contact, claiming a message for sending)
are conditional UPDATEs in `gotv.texting.texts`; the constraints here are the last line of defence.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from werkzeug.security import check_password_hash, generate_password_hash

from gotv.db import Model
from gotv.encryption import Encrypted


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Timestamp(TypeDecorator[datetime]):
    """A DateTime that always comes back timezone-aware in UTC, on SQLite as on PostgreSQL.

    (A decorator, not a DateTime subclass: SQLite's dialect replaces a subclass by its own
    DATETIME and the conversion would be lost.)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


def enum_column(enum_class: type[enum.Enum]) -> Enum:
    """Store an enum by its value as a short string with a CHECK constraint."""
    return Enum(
        enum_class,
        values_callable=lambda members: [member.value for member in members],
        native_enum=False,
        length=20,
        create_constraint=True,
        name=enum_class.__name__.lower(),
    )


class Role(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    TEXTER = "texter"

    @property
    def is_organizer(self) -> bool:
        """Owners and admins run campaigns; texters only text."""
        return self in (Role.OWNER, Role.ADMIN)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ARCHIVED = "archived"


class ContactStatus(enum.StrEnum):
    NEW = "new"  # not yet texted
    TEXTED = "texted"  # the initial message is claimed; it is never sent again


class Direction(enum.StrEnum):
    OUTBOUND = "outbound"
    INBOUND = "inbound"


class MessageKind(enum.StrEnum):
    TEXT = "text"  # written by a volunteer (or the script)
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"  # the one text confirming an opt-out
    HELP_REPLY = "help_reply"  # the organization's help text, answering HELP


class MessageStatus(enum.StrEnum):
    """Our outbox states, then Twilio's, in the order a message moves through them."""

    QUEUED = "queued"  # written by a click, waiting for a send job
    SENDING = "sending"  # claimed by one send job; never re-sent automatically
    ACCEPTED = "accepted"  # Twilio took it (its queued/accepted/sending)
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"  # Twilio refused it or never sent it
    REFUSED = "refused"  # our last gate refused it; see refusal_reason
    RECEIVED = "received"  # inbound


# What organizers' screens and exports show times in until the organization picks its own.
DEFAULT_TIME_ZONE = "America/New_York"
# A new list leaves out numbers the organization texted this many days back (0: never).
DEFAULT_RETEXT_GUARD_DAYS = 30

DEFAULT_HELP_TEXT = (
    "{organization}: volunteers texting about the election. Reply STOP to opt out. "
    "Msg&data rates may apply."
)


class Organization(Model):
    __tablename__ = "organization"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    # Answers a HELP that Twilio does not answer itself; {organization} is filled in.
    help_text: Mapped[str] = mapped_column(
        Text, default=DEFAULT_HELP_TEXT, server_default=DEFAULT_HELP_TEXT
    )
    # Messages per second across all the organization's senders; None: only senders' own limits.
    per_second: Mapped[float | None] = mapped_column(Float)
    # The IANA zone organizers read times in: dashboards, review, the audit log, exports.
    time_zone: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TIME_ZONE, server_default=DEFAULT_TIME_ZONE
    )
    # An upload leaves out numbers the organization texted within this many days, unless the
    # organizer includes them on purpose (gotv.lists.imports); 0 turns the guard off.
    retext_guard_days: Mapped[int] = mapped_column(
        Integer, default=DEFAULT_RETEXT_GUARD_DAYS, server_default=str(DEFAULT_RETEXT_GUARD_DAYS)
    )
    # Whether numbers of the US territories (Puerto Rico, the Virgin Islands, Guam, the Northern
    # Mariana Islands, American Samoa) are texted: see gotv.compliance.numbers.
    texts_us_territories: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class User(UserMixin, Model):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[Role] = mapped_column(enum_column(Role), default=Role.TEXTER)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    # Last texting action (batch, send, reply): a batch held past the campaign's idle time is freed.
    last_active_at: Mapped[datetime | None] = mapped_column(Timestamp())
    # Team: a suspended member cannot sign in; see gotv.people.team.suspend.
    suspended_at: Mapped[datetime | None] = mapped_column(Timestamp())
    # Two-step sign-in (gotv.people.twofactor): the TOTP secret, encrypted at rest (and left
    # out of the user loaded on every request: it is read, and decrypted, only when needed), and
    # the last time step accepted.
    totp_secret: Mapped[str | None] = mapped_column(Encrypted(), deferred=True)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # The language of their pages ("es", "en"); None: the browser's (gotv/i18n.py).
    locale: Mapped[str | None] = mapped_column(String(10))
    # Their last initial text: the next waits MIN_READ (gotv/texting/texts.py).
    last_initial_at: Mapped[datetime | None] = mapped_column(Timestamp())
    # Every session carries the generation it began in; raising it ends them all at their next
    # request (gotv.people.sessions).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    organization: Mapped[Organization] = relationship()

    @validates("email")
    def normalize_email(self, _key: str, email: str) -> str:
        """Emails are stored lower-cased, so uniqueness and login ignore case."""
        return email.strip().lower()

    def set_password(self, password: str, method: str | None = None) -> None:
        """Store a hash of `password`, made by `method` (werkzeug's, default scrypt)."""
        if method is None:
            self.password_hash = generate_password_hash(password)
        else:
            self.password_hash = generate_password_hash(password, method)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)

    @property
    def is_organizer(self) -> bool:
        return self.role.is_organizer

    @property
    def is_active(self) -> bool:  # Flask-Login refuses to sign in an inactive user
        return self.suspended_at is None

    def get_id(self) -> str:
        """What a session holds of its user (Flask-Login): the id and the session generation,
        so raising the generation ends every session begun before."""
        return f"{self.id}.{self.session_generation or 0}"


class TwilioAccount(Model):
    """An organization's own Twilio account (or subaccount): its texts go out through it, and
    the webhooks Twilio sends for it are checked with its auth token. An organization without
    one uses the instance's account, from the environment (TWILIO_ACCOUNT_SID...).

    The auth token signs Twilio's webhooks, so it is always kept; when an API key is given,
    gotv's calls to Twilio use the key instead.
    """

    __tablename__ = "twilio_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), unique=True)
    account_sid: Mapped[str] = mapped_column(String(34), unique=True)
    auth_token: Mapped[str] = mapped_column(Encrypted())
    api_key_sid: Mapped[str | None] = mapped_column(String(34))
    api_key_secret: Mapped[str | None] = mapped_column(Encrypted())
    friendly_name: Mapped[str] = mapped_column(String(200), default="")
    # Limits of the whole account, across every worker (None: the instance's defaults).
    concurrency: Mapped[int | None] = mapped_column(Integer)  # requests in flight at once
    per_second: Mapped[float | None] = mapped_column(Float)  # messages per second
    # The brand's daily cap (T-Mobile's, per 10DLC brand), reset at midnight Pacific time.
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    verified_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class Sender(Model):
    """A number or Messaging Service texts go out from, with the pace the organizer set for it.

    An address belongs to one organization in the whole instance, and was found in the Twilio
    account it sends through (`twilio_account_id`; None: the instance's account) when added.
    """

    __tablename__ = "sender"
    __table_args__ = (UniqueConstraint("address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    twilio_account_id: Mapped[int | None] = mapped_column(ForeignKey("twilio_account.id"))
    # An E.164 number or a Messaging Service SID (MG...).
    address: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(100), default="")
    # Messages per second from this sender, across all workers; None: no limit of ours.
    per_second: Mapped[float | None] = mapped_column(Float)
    # Messages per day from this sender, reset at midnight Pacific time as the carriers'
    # daily caps are; None: no cap.
    daily_cap: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class Campaign(Model):
    __tablename__ = "campaign"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    script: Mapped[str] = mapped_column(Text, default="")
    # Merge tags the uploaded list provides beyond the standard ones.
    custom_field_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The uploaded lists' columns in their files' order, each {"header": its name in the file,
    # and "field": a standard field (cell, first_name...) or "custom": a merge tag}: what
    # exports give back under the file's own names (gotv.lists.exports).
    list_columns: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    status: Mapped[CampaignStatus] = mapped_column(
        enum_column(CampaignStatus), default=CampaignStatus.DRAFT
    )
    # The texting window in the recipient's local time, [start, end) in whole hours. The
    # builder and the API keep it within the federal 8:00-21:00 (hours.check_campaign_window);
    # only an operator's seed (the demo, the benchmarks) sets a wider one. State rules narrow it.
    window_start_hour: Mapped[int] = mapped_column(Integer, default=9)
    window_end_hour: Mapped[int] = mapped_column(Integer, default=20)
    # None: the deployment's default sender (TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER).
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("sender.id"))
    # Ask Twilio to replace look-alike Unicode (curly quotes...) with GSM-7 characters.
    smart_encoding: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Dynamic batches (gotv/texting/assignment.py): how many contacts a volunteer takes at once,
    # whether they may take more while replies wait, and after how many idle minutes unsent ones
    # go back.
    batch_size: Mapped[int] = mapped_column(Integer, default=200, server_default="200")
    batch_while_replies_wait: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )
    release_after_minutes: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    # Quiet hours follow the ZIP's time zone alone, not also the phone's area code's (off: a
    # text waits until it is allowed in both; see gotv.compliance.hours).
    trust_zip_alone: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    # Deleted campaigns are kept (archived, hidden) until an organizer restores them.
    deleted_at: Mapped[datetime | None] = mapped_column(Timestamp())

    organization: Mapped[Organization] = relationship()
    sender: Mapped[Sender | None] = relationship()

    @property
    def is_active(self) -> bool:
        return self.status == CampaignStatus.ACTIVE

    @property
    def texts_us_territories(self) -> bool:
        """Whether the campaign's organization texts the US territories."""
        return self.organization.texts_us_territories


class Contact(Model):
    __tablename__ = "contact"
    __table_args__ = (
        UniqueConstraint("campaign_id", "cell"),
        # Batches: untexted contacts by holder (NULL: free to take), in list order.
        Index(
            "ix_contact_new_by_texter",
            "campaign_id",
            "texter_id",
            "id",
            sqlite_where=text("status = 'new'"),
            postgresql_where=text("status = 'new'"),
        ),
        # Replies waiting, by campaign and volunteer: the dashboard and the batch screens.
        Index(
            "ix_contact_waiting",
            "campaign_id",
            "texter_id",
            sqlite_where=text("needs_reply"),
            postgresql_where=text("needs_reply"),
        ),
        # The places (zones, state rules) untexted contacts are in: texting.untexted_places.
        Index(
            "ix_contact_new_places",
            "campaign_id",
            "time_zones",
            "rule_states",
            sqlite_where=text("status = 'new'"),
            postgresql_where=text("status = 'new'"),
        ),
        # The few untexted contacts set aside for their numbers (campaigns.dashboard.progress).
        Index(
            "ix_contact_refused",
            "campaign_id",
            sqlite_where=text("refused IS NOT NULL"),
            postgresql_where=text("refused IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    cell: Mapped[str] = mapped_column(String(20), index=True)  # E.164
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    zip: Mapped[str] = mapped_column(String(10), default="")
    state: Mapped[str] = mapped_column(String(2), default="")
    # States whose quiet-hour laws apply, space-separated: the ZIP's and the area code's.
    rule_states: Mapped[str] = mapped_column(String(20), default="", server_default=text("''"))
    # Every IANA zone the recipient may be in, space-separated; all must be in the window.
    time_zones: Mapped[str] = mapped_column(String(200), default="")
    custom_fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[ContactStatus] = mapped_column(
        enum_column(ContactStatus), default=ContactStatus.NEW
    )
    # Why the number policy refuses this untexted contact's number (a numbers.Reason), once
    # found: a number loaded before the policy, or in a territory the organization stopped
    # texting. Such a contact is in nobody's batch (gotv.texting.assignment).
    refused: Mapped[str | None] = mapped_column(String(20))
    texter_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"), index=True)
    assigned_at: Mapped[datetime | None] = mapped_column(Timestamp())  # when texter_id took it
    # Replies the volunteer has not yet seen (reset when they open the conversation).
    unread: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    needs_reply: Mapped[bool] = mapped_column(Boolean, default=False)
    # A reply looked like a request to stop; a volunteer confirms or dismisses it.
    opt_out_suggested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # When the oldest reply still waiting for an answer came (None: nobody waits).
    waiting_since: Mapped[datetime | None] = mapped_column(Timestamp())
    # The inbox's preview: the latest reply or answer, cut short, and when (None: only the
    # initial text so far).
    last_message: Mapped[str | None] = mapped_column(String(160))
    last_message_at: Mapped[datetime | None] = mapped_column(Timestamp())
    updated_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow, onupdate=utcnow)

    campaign: Mapped[Campaign] = relationship()
    texter: Mapped[User | None] = relationship()


class Message(Model):
    __tablename__ = "message"
    __table_args__ = (
        # A contact gets one initial message, ever: a database fact, not a UI convention.
        Index(
            "uq_message_one_initial_per_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("is_initial"),
            postgresql_where=text("is_initial"),
        ),
        Index("ix_message_contact_created", "contact_id", "created_at"),
        # A reply finds its conversation by the number we texted (texting.conversation_for).
        Index("ix_message_to_number_created", "to_number", "created_at"),
        # The dashboard: a campaign's messages over a window of time, and who replied.
        Index("ix_message_campaign_created", "campaign_id", "created_at"),
        Index(
            "ix_message_campaign_replies",
            "campaign_id",
            "contact_id",
            sqlite_where=text("direction = 'inbound'"),
            postgresql_where=text("direction = 'inbound'"),
        ),
        # The outbox: send pumps scan queued rows in id order, and admins look for stuck ones.
        Index(
            "ix_message_queued",
            "id",
            sqlite_where=text("status = 'queued'"),
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_message_sending",
            "updated_at",
            sqlite_where=text("status = 'sending'"),
            postgresql_where=text("status = 'sending'"),
        ),
        # Message review: conversations by the error code of a message (the few that have one).
        Index(
            "ix_message_errors",
            "organization_id",
            "error_code",
            sqlite_where=text("error_code IS NOT NULL"),
            postgresql_where=text("error_code IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    # Indexed by ix_message_campaign_created, which leads with it.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contact.id"))
    texter_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    direction: Mapped[Direction] = mapped_column(enum_column(Direction))
    kind: Mapped[MessageKind] = mapped_column(
        enum_column(MessageKind), default=MessageKind.TEXT, server_default=MessageKind.TEXT.value
    )
    is_initial: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[str] = mapped_column(Text)
    from_number: Mapped[str] = mapped_column(String(40), default="")
    to_number: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[MessageStatus] = mapped_column(enum_column(MessageStatus))
    # Set by the form that created an outbound message, so a double submit cannot send twice.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    refusal_reason: Mapped[str | None] = mapped_column(String(40))
    # The address the message is paced on (a Sender's address, or "" for the default sender).
    sender: Mapped[str] = mapped_column(String(40), default="", server_default=text("''"))
    # The Twilio account the message went through (outbound: set when claimed for sending;
    # inbound: the account that received it). Status callbacks must come from it.
    account_sid: Mapped[str | None] = mapped_column(String(34))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A queued message is not sent before this (a retry's backoff, a sender's daily cap).
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp())
    segments: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp())
    updated_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow, onupdate=utcnow)

    contact: Mapped[Contact | None] = relationship()
    campaign: Mapped[Campaign | None] = relationship()
    texter: Mapped[User | None] = relationship()

    @classmethod
    def queued_to(cls, contact: Contact, body: str, **fields: Any) -> Message:
        """A new outbound message to the contact, queued: the outbox row a send job picks up."""
        return cls(
            organization_id=contact.campaign.organization_id,
            campaign_id=contact.campaign_id,
            contact_id=contact.id,
            direction=Direction.OUTBOUND,
            body=body,
            to_number=contact.cell,
            sender=contact.campaign.sender.address if contact.campaign.sender else "",
            status=MessageStatus.QUEUED,
            **fields,
        )


class MessageMedia(Model):
    """A picture (or other media) a voter sent with a reply, as Twilio holds it.

    Shown through gotv (fetched with the organization's credentials, type- and size-checked),
    never linked to Twilio from a page.
    """

    __tablename__ = "message_media"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))


class CampaignTally(Model):
    """How many of a campaign's messages are in each status, kept by database triggers.

    Each status change adds -1 and +1 to a row chosen by the writing connection (`shard`), so
    busy campaigns have no single hot row; read a count as the SUM over shards.
    """

    __tablename__ = "campaign_tally"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(20), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class OptOut(Model):
    """An organization-wide opt-out: the one source of truth, checked by every send."""

    __tablename__ = "opt_out"
    __table_args__ = (UniqueConstraint("organization_id", "cell"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    cell: Mapped[str] = mapped_column(String(20))
    # What recorded it: inbound_keyword, texter, carrier_21610, admin, import.
    source: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    # Set once, by whoever queues the one confirmation text this opt-out may get.
    confirmation_message_id: Mapped[int | None] = mapped_column(ForeignKey("message.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class BlockedNumber(Model):
    """A number the carrier told us cannot receive texts (invalid, landline, blocked)."""

    __tablename__ = "blocked_number"
    __table_args__ = (UniqueConstraint("organization_id", "cell"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    cell: Mapped[str] = mapped_column(String(20))
    error_code: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class AuditEvent(Model):
    """Append-only: who did what to which thing, and when."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    action: Mapped[str] = mapped_column(String(60))
    subject: Mapped[str] = mapped_column(String(200), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class ImportStatus(enum.StrEnum):
    UPLOADED = "uploaded"  # file stored, waiting for the organizer to confirm the mapping
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # nothing was loaded; see error
    CANCELLED = "cancelled"  # nothing was loaded


class ImportMode(enum.StrEnum):
    APPEND = "append"  # add the list's new numbers to the campaign
    REPLACE = "replace"  # drop the campaign's untexted contacts first


class ContactImport(Model):
    """One upload of a voter list into a campaign, and its progress."""

    __tablename__ = "contact_import"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    filename: Mapped[str] = mapped_column(String(255))
    # The file in the upload store (gotv/edge/storage.py), until the import ends or expires.
    upload_key: Mapped[str] = mapped_column(String(500))
    file_size: Mapped[int] = mapped_column(Integer, default=0)
    encoding: Mapped[str] = mapped_column(String(20), default="")
    delimiter: Mapped[str] = mapped_column(String(2), default=",")
    headers: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Standard field (cell, first_name, last_name, zip) -> the header that holds it.
    mapping: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    mode: Mapped[ImportMode] = mapped_column(enum_column(ImportMode), default=ImportMode.APPEND)
    exclude_campaign_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    # The organizer chose to load numbers the organization texted recently (see `recent`).
    include_recent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The organization's re-texting guard when the import ran, in days (0: none applied).
    recent_days: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[ImportStatus] = mapped_column(
        enum_column(ImportStatus), default=ImportStatus.UPLOADED, index=True
    )
    # Set only when Redis could not carry the cancel; the sweep passes it on (lists/imports.py).
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Times a job has started loading it: a worker that died mid-load is retried, up to a point.
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bytes_read: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    loaded: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)  # unusable rows (bad number)
    duplicates: Mapped[int] = mapped_column(Integer, default=0)  # in the file or the campaign
    opted_out: Mapped[int] = mapped_column(Integer, default=0)
    excluded: Mapped[int] = mapped_column(Integer, default=0)  # in an excluded earlier campaign
    # Texted by the organization within `recent_days`, so left out.
    recent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp())


class ImportRejection(Model):
    """A row an import did not load, with the original row and the reason, for download."""

    __tablename__ = "import_rejection"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("contact_import.id"), index=True)
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(100))
    row: Mapped[list[str]] = mapped_column(JSON)


class StoredUpload(Model):
    """An uploaded file kept in the database (UPLOAD_STORAGE=database; gotv/edge/storage.py,
    which reads and writes these two tables with statements of its own)."""

    __tablename__ = "stored_upload"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow, index=True)


class StoredUploadChunk(Model):
    """One piece (1 MiB) of a stored upload, in order of `position`."""

    __tablename__ = "stored_upload_chunk"

    key: Mapped[str] = mapped_column(
        ForeignKey("stored_upload.key", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


# --- Campaign content: survey questions, canned responses, tags ----------------------------


class SurveyQuestion(Model):
    """A question volunteers ask in a campaign's conversations, in the organizer's order.

    The campaign's script is a tree (interaction steps): the first message, then its
    top-level questions; each choice of a question may carry the script that follows that
    answer (`SurveyChoice.scripts`) and questions of its own (`parent_choice_id`).
    A question that has answers is retired rather than deleted, so its answers stay readable.
    """

    __tablename__ = "survey_question"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    # The answer this question follows; None: asked after the first message.
    parent_choice_id: Mapped[int | None] = mapped_column(
        ForeignKey("survey_choice.id", use_alter=True), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(String(300))
    retired_at: Mapped[datetime | None] = mapped_column(Timestamp())
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)

    campaign: Mapped[Campaign] = relationship()
    choices: Mapped[list[SurveyChoice]] = relationship(
        order_by="SurveyChoice.position, SurveyChoice.id",
        back_populates="question",
        cascade="all, delete-orphan",
        foreign_keys="SurveyChoice.question_id",
    )


class SurveyChoice(Model):
    """One answer a survey question offers, in the organizer's order, with the script that
    follows it: alternative wordings, merge fields as in the first message (may be none)."""

    __tablename__ = "survey_choice"

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_question.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    label: Mapped[str] = mapped_column(String(100))
    scripts: Mapped[list[str]] = mapped_column(JSON, default=list)

    question: Mapped[SurveyQuestion] = relationship(
        back_populates="choices", foreign_keys=[question_id]
    )


class SurveyAnswer(Model):
    """A contact's current answer to a question: one per contact and question, replaced."""

    __tablename__ = "survey_answer"
    __table_args__ = (
        UniqueConstraint("contact_id", "question_id"),
        # The dashboard counts answers per choice of a question: an index-only GROUP BY.
        Index("ix_survey_answer_question_choice", "question_id", "choice_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    question_id: Mapped[int] = mapped_column(ForeignKey("survey_question.id"))
    choice_id: Mapped[int] = mapped_column(ForeignKey("survey_choice.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    answered_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)

    choice: Mapped[SurveyChoice] = relationship()


class CannedResponse(Model):
    """A reply a campaign's volunteers can insert with one click; merge fields as in the script."""

    __tablename__ = "canned_response"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)


class Tag(Model):
    """A label an organization puts on contacts; names are unique ignoring case."""

    __tablename__ = "tag"
    __table_args__ = (UniqueConstraint("organization_id", "name_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"))
    name: Mapped[str] = mapped_column(String(60))
    # The name case-folded with spaces collapsed: what uniqueness is checked on.
    name_key: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)

    @validates("name")
    def keep_key(self, _key: str, name: str) -> str:
        name = " ".join(name.split())
        self.name_key = tag_key(name)
        return name


def tag_key(name: str) -> str:
    """What makes two tag names the same: case and runs of spaces do not count."""
    return " ".join(name.split()).casefold()


class ContactTag(Model):
    """A tag on a contact, with who put it there and when."""

    __tablename__ = "contact_tag"
    __table_args__ = (UniqueConstraint("contact_id", "tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contact.id"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)

    tag: Mapped[Tag] = relationship()


# --- The JSON API: per-organization tokens ---------------------------------------------------


class ApiToken(Model):
    """A secret that lets a program use the JSON API for one organization, within its scopes.

    Only a hash of the secret is stored; `prefix` is its public part, to find the row.
    """

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 hex of the whole token
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    # Updated at most once a minute, so a busy token's row is not written on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(Timestamp())
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp())

    created_by: Mapped[User | None] = relationship()


# --- Team: invitations ---------------------------------------------------------------------


class Invite(Model):
    """A link that lets new people join an organization with a role (see gotv.people.team).

    Only the SHA-256 of the link's token is stored: the database never holds a usable link.
    """

    __tablename__ = "invite"

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organization.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[Role] = mapped_column(enum_column(Role))
    # Where a new volunteer lands after signing up: this campaign's send page.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaign.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))
    created_at: Mapped[datetime] = mapped_column(Timestamp(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Timestamp())
    max_uses: Mapped[int | None] = mapped_column(Integer)  # None: any number of people
    uses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    revoked_at: Mapped[datetime | None] = mapped_column(Timestamp())

    organization: Mapped[Organization] = relationship()
    campaign: Mapped[Campaign | None] = relationship()
    created_by: Mapped[User | None] = relationship()
