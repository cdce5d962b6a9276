"""Volunteers: batches, the send loop for initial texts, and their conversations.

Every page works as plain forms; send.js and inbox.js add the JSON send loop, live updates
(`/texting/events`, Server-Sent Events fed by Redis pub/sub, see gotv/texting/live.py) and the
keyboard on top. Everything a volunteer reads is translated (gotv/web/i18n.py).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeGuard

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext, ngettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup
from redis import Redis
from sqlalchemy import ColumnElement, bindparam, case, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, contains_eager, joinedload
from wtforms import BooleanField, HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from gotv import ids
from gotv.campaigns import content
from gotv.compliance import optouts
from gotv.db import db, execute_core
from gotv.edge import queue, sms
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Message,
    MessageKind,
    MessageMedia,
    MessageStatus,
    utcnow,
)
from gotv.people import audit
from gotv.texting import assignment, live, replies, segments, texts
from gotv.web.auth import get_owned
from gotv.web.i18n import current_language, js_plural, translate
from gotv.web.ids import IdField

log = logging.getLogger(__name__)

bp = Blueprint("inbox", __name__, url_prefix="/texting")

# Contacts the send loop keeps ready in the page, so the next is there when one is sent.
PREFETCH = 5


class SendForm(FlaskForm):
    contact_id = IdField(validators=[DataRequired()])
    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])


class ReplyForm(FlaskForm):
    body = TextAreaField("Reply", validators=[DataRequired(), Length(max=1600)])
    idempotency_key = HiddenField(validators=[DataRequired(), Length(min=16, max=64)])
    then_next = BooleanField()  # after sending, on to the next conversation waiting


class OptOutForm(FlaskForm):
    confirm = BooleanField("Send the one confirmation text", default=True)


class DismissForm(FlaskForm):
    pass


class BatchForm(FlaskForm):
    pass


def new_key() -> str:
    """A fresh key for a send form: resubmitting the same form cannot send twice."""
    return secrets.token_urlsafe(24)


def get_conversation(contact_id: int) -> Contact:
    """A contact the user may converse with, its campaign loaded in the same query.

    :raise 404: for others' or other orgs' contacts.
    """
    contact = find_conversation(contact_id)
    if contact is None:
        abort(404)
    return contact


def find_conversation(contact_id: int) -> Contact | None:
    """`get_conversation`, or None where it raises 404."""
    contact = db.session.get(Contact, contact_id, options=[joinedload(Contact.campaign)])
    return contact if contact is not None and converses(contact) else None


def converses(contact: Contact) -> bool:
    """The user may see the contact's conversation: theirs, or an organizer's in the org."""
    if contact.campaign.organization_id != current_user.organization_id:
        return False
    return contact.texter_id == current_user.id or bool(current_user.is_organizer)


def may_converse(contact: Contact) -> Contact:
    """`contact`, if the user may see its conversation (`converses`).

    :raise 404: otherwise (never 403, which would tell a stranger that it exists).
    """
    if not converses(contact):
        abort(404)
    return contact


def queue_once(idempotency_key: str, queue_message: Callable[[], object]) -> str | None:
    """Queue a text unless this form was already sent; commit; wake a send pump.

    Returns why the text may not be sent (nothing is written then; in the page's language), or
    None. The key is looked
    up only when queueing fails: a form sent twice finds its contact already texted (or its
    key already stored), and then answers as the first send did. So the usual send costs its
    own statements alone.
    """
    try:
        queue_message()
    except (texts.CannotText, IntegrityError) as refusal:
        db.session.rollback()
        if texts.message_for_key(idempotency_key) is not None:
            return None
        if isinstance(refusal, IntegrityError):
            raise
        return translate(refusal.message, **refusal.values)
    assignment.touch(current_user, utcnow())
    db.session.commit()
    queue.wake_senders()
    return None


def send_initial_once(
    campaign: Campaign | texts.CampaignRow,
    contact_id: int,
    idempotency_key: str,
    contact: texts.SendingContactRow | None = None,
) -> str | None:
    """`queue_once` for a contact's initial text, MIN_SEND_GAP after the volunteer's previous
    one (SEND_MIN_GAP_MS in the config, for tests that send many); `contact` is its row, if
    read already (`texts.queue_initial`)."""
    gap = current_app.config.get("SEND_MIN_GAP_MS")
    min_gap = texts.MIN_SEND_GAP if gap is None else timedelta(milliseconds=gap)
    return queue_once(
        idempotency_key,
        lambda: texts.queue_initial(
            campaign,
            contact_id,
            current_user,
            idempotency_key,
            utcnow(),
            min_gap=min_gap,
            contact=contact,
        ),
    )


def flash_refusal(refusal: str | None) -> None:
    if refusal:
        flash(refusal, "error")


@bp.get("")
@login_required
def index() -> ResponseReturnValue:
    campaigns = db.session.scalars(
        select(Campaign)
        .where(
            Campaign.organization_id == current_user.organization_id,
            Campaign.status == CampaignStatus.ACTIVE,
        )
        .order_by(Campaign.created_at.desc())
    ).all()
    waiting = dict(
        db.session.execute(
            select(Contact.campaign_id, func.count())
            .where(Contact.texter_id == current_user.id, Contact.needs_reply.is_(True))
            .group_by(Contact.campaign_id)
        ).all()
    )
    has_texted = db.session.execute(
        select(Contact.id).where(Contact.texter_id == current_user.id).limit(1)
    ).first()
    return render_template(
        "inbox/index.html", campaigns=campaigns, waiting=waiting, newcomer=has_texted is None
    )


# --- Batches and the send loop -------------------------------------------------------------


@bp.get("/<int:campaign_id>/send")
@login_required
def send_loop(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    now = utcnow()
    state = loop_state(campaign, now)
    contact = state.pop("contact")
    body = texts.render(campaign.script, contact, current_user) if contact else ""
    return render_template(
        "inbox/send.html",
        campaign=campaign,
        contact=contact,
        body=body,
        segment_count=segments.count(body, smart_encoding=campaign.smart_encoding).segments,
        form=SendForm(contact_id=contact.id if contact else None, idempotency_key=new_key()),
        batch_form=BatchForm(),
        min_read_ms=int(texts.MIN_READ.total_seconds() * 1000),
        **state,
    )


def loop_state(campaign: Campaign, now: datetime) -> dict[str, Any]:
    """What the send screen shows: the batch, the conversations waiting for a reply, and,
    when the batch is empty, who in the campaign opens later and whether the volunteer has
    texted anyone yet (a newcomer is told what to do)."""
    batch = (
        assignment.batch(campaign, current_user, now, PREFETCH)
        if campaign.is_active
        else assignment.Batch()
    )
    empty = campaign.is_active and not batch.held
    waiting = waiting_ids(campaign)
    return {
        "batch": batch,
        "contact": batch.ready[0] if batch.ready else None,
        "replies_waiting": len(waiting),
        "waiting_ids": waiting,
        # Only when the batch is empty: who may be taken later, and when.
        "pool_later": assignment.pool_later(campaign, current_user, now) if empty else [],
        "newcomer": empty and not has_texted(campaign),
    }


# The send screen counts the conversations waiting by their ids (up to this many), so that a
# reply arriving live for one already counted is not counted twice.
WAITING_IDS = 500


def waiting_ids(campaign: Campaign) -> list[int]:
    """The volunteer's conversations in the campaign waiting for a reply, longest first."""
    return list(
        db.session.scalars(
            select(Contact.id)
            .where(
                Contact.campaign_id == campaign.id,
                Contact.texter_id == current_user.id,
                Contact.needs_reply.is_(True),
            )
            .order_by(*WAITING_ORDER)
            .limit(WAITING_IDS)
        )
    )


def has_texted(campaign: Campaign) -> bool:
    """The volunteer has texted someone in the campaign."""
    return (
        db.session.execute(
            select(Contact.id)
            .where(
                Contact.campaign_id == campaign.id,
                Contact.texter_id == current_user.id,
                Contact.status == ContactStatus.TEXTED,
            )
            .limit(1)
        ).first()
        is not None
    )


def later_json(groups: list[assignment.Later]) -> list[dict[str, Any]]:
    return [
        {
            "count": group.count,
            "opens_at": group.opens_at.isoformat(),
            "local_time": group.local_time,
        }
        for group in groups
    ]


@bp.post("/<int:campaign_id>/batch")
@login_required
def take_batch(campaign_id: int) -> ResponseReturnValue:
    """ "Get N contacts": lock up to a batch of free contacts to this volunteer."""
    campaign = get_owned(Campaign, campaign_id)
    if BatchForm().validate_on_submit():
        try:
            taken = assignment.take_batch(campaign, current_user, utcnow())
        except assignment.RepliesWaiting as refusal:
            db.session.rollback()
            flash(
                ngettext(
                    "%(num)s person is waiting for your reply. Answer them before taking more"
                    " contacts.",
                    "%(num)s people are waiting for your reply. Answer them before taking more"
                    " contacts.",
                    refusal.waiting,
                ),
                "error",
            )
        except assignment.BatchRefused as refusal:
            db.session.rollback()
            flash(translate(str(refusal)), "error")
        else:
            db.session.commit()
            if taken:
                flash(
                    ngettext(
                        "%(num)s new contact is yours to text.",
                        "%(num)s new contacts are yours to text.",
                        taken,
                    ),
                    "success",
                )
            else:
                flash(nobody_now(campaign), "error")
    return redirect(url_for("inbox.send_loop", campaign_id=campaign.id))


def nobody_now(campaign: Campaign) -> str:
    """Why a batch came back empty: nobody left, or everyone left opens later (and when)."""
    later = assignment.pool_later(campaign, current_user, utcnow())
    if not later:
        return gettext("Nobody is left to text in this campaign. Thank you!")
    first = later[0]
    return ngettext(
        "Nobody can be texted right now: %(num)s person opens at %(time)s their time.",
        "Nobody can be texted right now: %(num)s people open at %(time)s their time.",
        first.count,
        time=first.local_time,
    )


@bp.post("/<int:campaign_id>/batch/release")
@login_required
def release_batch(campaign_id: int) -> ResponseReturnValue:
    """ "I'm done for now": the volunteer's unsent contacts go back for others to text."""
    campaign = get_owned(Campaign, campaign_id)
    if BatchForm().validate_on_submit():
        released = assignment.release(campaign, current_user)
        db.session.commit()
        flash(
            ngettext(
                "Thank you! %(num)s unsent contact went back to the team.",
                "Thank you! %(num)s unsent contacts went back to the team.",
                released,
            ),
            "success",
        )
    return redirect(url_for("inbox.send_loop", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/send")
@login_required
def send_initial(campaign_id: int) -> ResponseReturnValue:
    """The send loop without JavaScript: a form post, then the next contact's page."""
    campaign = get_owned(Campaign, campaign_id)
    form = SendForm()
    if not form.validate_on_submit():
        abort(400)
    flash_refusal(
        send_initial_once(campaign, form.contact_id.data or 0, form.idempotency_key.data or "")
    )
    return redirect(url_for("inbox.send_loop", campaign_id=campaign.id))


@bp.get("/<int:campaign_id>/queue.json")
@login_required
def queue_json(campaign_id: int) -> ResponseReturnValue:
    """The send loop's state: the next few contacts, ready to send, and who opens later."""
    campaign = get_owned(Campaign, campaign_id)
    return no_store(jsonify(queue_payload(campaign, utcnow())))


@bp.post("/<int:campaign_id>/send.json")
@login_required
def send_json(campaign_id: int) -> ResponseReturnValue:
    """Send one initial text; answers with what the page needs to keep PREFETCH contacts ready.

    Body: {"contact_id": int, "idempotency_key": str, "after": int, "want": int}: the page
    holds ready contacts up to id `after` and wants `want` more (at most PREFETCH; none if
    left out). Answer: {"sent": {"contact_id": int}, "next": [ready contacts after `after`],
    "after": the id to ask after next time}. No counts: the page keeps its own, and fetches
    queue.json when its queue runs dry. A repeated key answers as the first send did; a contact
    that may not be texted is refused with 409 and {"error": str, "next": [...], "after": int},
    and so is a send sooner than MIN_SEND_GAP after the volunteer's previous one (with "keep":
    true: the contact is still theirs to send, once read).
    """
    sent = request.get_json(silent=True) or {}
    contact_id, key = sent.get("contact_id"), sent.get("idempotency_key")
    after, want = sent.get("after", 0), sent.get("want", 0)
    if not (is_int(contact_id) and is_int(after) and is_int(want)):
        refuse_body(campaign_id)
    if not isinstance(key, str) or not 16 <= len(key) <= 64:
        refuse_body(campaign_id)
    # One query reads the campaign, the contact and the top-up; before the send, whose commit
    # expires the user, which rendering reads.
    reading = assignment.read_for_send(
        campaign_id,
        current_user.organization_id,
        current_user,
        contact_id,
        after,
        min(want, PREFETCH),
    )
    if reading is None:
        abort(404)
    campaign = reading.campaign
    top_up = topped_up(campaign, reading.top_up, after, want)
    refusal = send_initial_once(campaign, contact_id, key, reading.contact)
    if refusal:
        keep = refusal == translate(texts.TOO_SOON)
        return no_store(jsonify(error=refusal, keep=keep, **top_up)), 409
    return no_store(jsonify(sent={"contact_id": contact_id}, **top_up))


def refuse_body(campaign_id: int) -> NoReturn:
    """400 for a send whose body is not as documented (404 for another organization's
    campaign, as for every send)."""
    sending_campaign(campaign_id)
    abort(400)


def sending_campaign(campaign_id: int) -> texts.CampaignRow:
    """What sending reads of the campaign (`texts.SENDING_COLUMNS`), if it is the user's
    organization's: a Core row, as sends come once a second per volunteer (`get_owned`'s ORM
    object costs more, docs/benchmarks.md).

    :raise 404: for a campaign that does not exist or is another organization's.
    """
    found = execute_core(
        _SENDING_CAMPAIGN,
        {"campaign": campaign_id, "organization": current_user.organization_id},
    ).first()
    if found is None:
        abort(404)
    return found


_SENDING_CAMPAIGN = select(*texts.SENDING_COLUMNS).where(
    Campaign.id == bindparam("campaign"), Campaign.organization_id == bindparam("organization")
)


def is_int(value: Any) -> TypeGuard[int]:
    """A JSON integer that fits an id column (true and false are not numbers here)."""
    return ids.is_id(value)


def topped_up(
    campaign: texts.CampaignRow, rows: list[texts.ContactRow], after: int, want: int
) -> dict[str, Any]:
    """Up to `want` (at most PREFETCH) ready contacts of the top-up's `rows` (read after id
    `after`), rendered."""
    if not campaign.is_active:
        return {"next": [], "after": after}
    contacts, last = assignment.ready_among(campaign, rows, utcnow(), after, min(want, PREFETCH))
    return {"next": [ready_contact(campaign, contact) for contact in contacts], "after": last}


def queue_payload(campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The JSON shape of `loop_state`, each ready contact with its own send key."""
    state = loop_state(campaign, now)
    batch: assignment.Batch = state["batch"]
    return {
        "active": campaign.is_active,
        "ready": [ready_contact(campaign, contact) for contact in batch.ready],
        "after": batch.ready[-1].id if batch.ready else 0,
        "ready_count": batch.ready_count,
        "held": batch.held,
        "later": later_json(batch.later),
        "pool_later": later_json(state["pool_later"]),
        "newcomer": state["newcomer"],
        "waiting_ids": state["waiting_ids"],
    }


def ready_contact(
    campaign: Campaign | texts.CampaignRow, contact: Contact | texts.ContactRow
) -> dict[str, Any]:
    body = texts.render(campaign.script, contact, current_user)
    counted = segments.count(body, smart_encoding=campaign.smart_encoding)
    return {
        "contact_id": contact.id,
        "first_name": contact.first_name,
        "body": body,
        "segments": counted.segments,
        "encoding": counted.encoding,
        "idempotency_key": new_key(),
    }


def wants_json() -> bool:
    """The page's script asked for JSON (Accept: application/json) rather than a redirect."""
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes[best] > 0


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Conversations -------------------------------------------------------------------------

# Conversations waiting for a reply, longest waiting first (the inbox's order, and the keys for
# the next and previous one).
_WAITED = func.coalesce(Contact.waiting_since, Contact.updated_at)
WAITING_ORDER = (_WAITED, Contact.id)


@bp.get("/<int:campaign_id>/conversations")
@login_required
def conversations(campaign_id: int) -> ResponseReturnValue:
    """The volunteer's inbox: conversations needing a reply first, longest waiting first, then
    the rest, latest first; each with its last message, when, and opted-out or blocked marks."""
    campaign = get_owned(Campaign, campaign_id)
    contacts = execute_core(
        _CONVERSATIONS,
        {
            "campaign": campaign.id,
            "texter": current_user.id,
            "organization": campaign.organization_id,
        },
    ).all()
    # Each row links to its thread: the URL is built once, not once per row; and the words of
    # the rows are translated once, not once per row (up to 200 of them).
    thread_url = url_for("inbox.conversation", contact_id=0).removesuffix("0")
    return render_template(
        "inbox/conversations.html",
        campaign=campaign,
        contacts=contacts,
        thread_url=thread_url,
        waited=Waited(utcnow()),
        unread_forms=js_plural("%(num)s unread", "%(num)s unread"),
    )


class Waited:
    """How long voters have waited for a reply, short ("waiting 12 min", "waiting 3 h",
    "waiting 2 d"), in the page's language: its words translated once for a whole list."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.words = gettext("waiting %(time)s")
        self.units = (gettext("%(num)s min"), gettext("%(num)s h"), gettext("%(num)s d"))

    def __call__(self, since: datetime) -> str:
        minutes = max(0, int((self.now - since).total_seconds() // 60))
        if minutes < 60:
            amount = self.units[0].replace("%(num)s", str(minutes))
        elif minutes < 48 * 60:
            amount = self.units[1].replace("%(num)s", str(minutes // 60))
        else:
            amount = self.units[2].replace("%(num)s", str(minutes // (24 * 60)))
        return self.words.replace("%(time)s", amount)


# The latest message of a conversation that has only its initial text (no reply, no answer:
# `Contact.last_message` is None), read only for those rows (COALESCE stops at the first value).
_LATEST_BODY = (
    select(Message.body)
    .where(Message.contact_id == Contact.id)
    .order_by(Message.created_at.desc(), Message.id.desc())
    .limit(1)
    .scalar_subquery()
)
# The columns the list shows, in the order conversations.html unpacks them (not whole contacts:
# their custom fields are JSON to decode). Built once.
_CONVERSATIONS = (
    select(
        Contact.id,
        Contact.first_name,
        Contact.last_name,
        Contact.unread,
        Contact.needs_reply,
        Contact.opt_out_suggested,
        Contact.waiting_since,
        func.coalesce(Contact.last_message, _LATEST_BODY),
        func.coalesce(Contact.last_message_at, Contact.updated_at),
        optouts.opted_out(bindparam("organization"), Contact.cell),
        optouts.blocked(bindparam("organization"), Contact.cell),
    )
    .where(
        Contact.campaign_id == bindparam("campaign"),
        Contact.texter_id == bindparam("texter"),
        Contact.status == ContactStatus.TEXTED,
    )
    .order_by(
        Contact.needs_reply.desc(),
        case((Contact.needs_reply, _WAITED)),
        case((Contact.needs_reply, Contact.id)),
        func.coalesce(Contact.last_message_at, Contact.updated_at).desc(),
        Contact.id.desc(),
    )
    .limit(200)
)


def next_waiting(contact: Contact) -> Contact | None:
    """The volunteer's conversation in the campaign that has waited longest for a reply, other
    than `contact`."""
    return db.session.scalars(
        select(Contact)
        .where(
            Contact.campaign_id == contact.campaign_id,
            Contact.texter_id == current_user.id,
            Contact.needs_reply.is_(True),
            Contact.id != contact.id,
        )
        .order_by(*WAITING_ORDER)
        .limit(1)
    ).first()


@bp.get("/conversations/<int:contact_id>")
@login_required
def conversation(contact_id: int) -> ResponseReturnValue:
    found = db.session.execute(
        _CONVERSATION_PAGE, {"contact": contact_id, "user": current_user.id}
    ).first()
    if found is None or not converses(found[0]):
        return not_yours()
    contact, opted_out, blocked, next_id, previous_id = found
    reading = contact.unread and contact.texter_id == current_user.id
    if reading:
        # Before reading the thread: a reply arriving now waits for this row's lock until the
        # commit below, then counts as unread, so none is marked read unseen.
        mark_read(contact)
    # The forms are plain HTML in the template (WTForms' rendering cost more than the rest of
    # the page); ReplyForm, OptOutForm and DismissForm still check what they post.
    page = render_template(
        "inbox/conversation.html",
        contact=contact,
        messages=texts.thread_rows(contact.id),
        opted_out=opted_out,
        blocked=blocked,
        idempotency_key=new_key(),
        next_id=next_id,
        previous_id=previous_id,
        draft=follow_up_draft(contact, request.args.get("script", type=int)),
    )
    if reading:
        # After rendering: a commit expires every row the page shows (each would be loaded
        # again, one query each).
        db.session.commit()
    return page


def not_yours() -> ResponseReturnValue:
    """The styled 404 of a conversation that is not (or no longer) the volunteer's."""
    return render_template("inbox/not_yours.html"), 404


def waiting_neighbour(forward: bool) -> ColumnElement[int]:
    """SQL: the id of the next (or previous) of the user's conversations in the contact's
    campaign waiting for a reply, in WAITING_ORDER, round to the first (or last).

    Two subqueries (the one past this contact, else the first of all): SQLite lets a
    subquery's WHERE, not its ORDER BY, name the outer row.
    """
    other = aliased(Contact)
    key = func.coalesce(other.waiting_since, other.updated_at)
    this = func.coalesce(Contact.waiting_since, Contact.updated_at)
    ahead = (
        (key > this) | ((key == this) & (other.id > Contact.id))
        if forward
        else (key < this) | ((key == this) & (other.id < Contact.id))
    )
    order = (key, other.id) if forward else (key.desc(), other.id.desc())
    waiting = select(other.id).where(
        other.campaign_id == Contact.campaign_id,
        other.texter_id == bindparam("user"),
        other.needs_reply.is_(True),
        other.id != Contact.id,
    )
    past = waiting.where(ahead).order_by(*order).limit(1).scalar_subquery()
    first = waiting.order_by(*order).limit(1).scalar_subquery()
    return func.coalesce(past, first)


# The contact and its campaign, whether the number opted out or is blocked, and the ids of the
# next and previous of the user's conversations in the campaign waiting for a reply: one query,
# built once.
_CONVERSATION_PAGE = (
    select(
        Contact,
        optouts.opted_out(Campaign.organization_id, Contact.cell).label("opted_out"),
        optouts.blocked(Campaign.organization_id, Contact.cell).label("blocked"),
        waiting_neighbour(forward=True).label("next_id"),
        waiting_neighbour(forward=False).label("previous_id"),
    )
    .join(Contact.campaign)
    .options(contains_eager(Contact.campaign))
    .where(Contact.id == bindparam("contact"))
)


def follow_up_draft(contact: Contact, choice_id: int | None) -> str:
    """The script after an answer just recorded (`?script=` its choice id, as the answer form
    redirects without JavaScript), filled in for the reply box; "" for none."""
    if not choice_id:
        return ""
    wordings = content.follow_up(content.survey(contact.campaign), choice_id, contact, current_user)
    return wordings[0] if wordings else ""


def mark_read(contact: Contact) -> None:
    """The volunteer has seen every reply so far (updated_at untouched: order is by activity).

    The loaded `contact` is left as it was; the caller commits.
    """
    db.session.execute(
        update(Contact)
        .where(Contact.id == contact.id)
        .values(unread=0, updated_at=Contact.updated_at)
        .execution_options(synchronize_session=False)
    )


@bp.post("/conversations/<int:contact_id>/read")
@login_required
def read(contact_id: int) -> ResponseReturnValue:
    """An open thread showed a reply live: it is read (inbox.js posts this, 204)."""
    contact = get_conversation(contact_id)
    if contact.texter_id == current_user.id:
        mark_read(contact)
        db.session.commit()
    return "", 204


@bp.post("/conversations/<int:contact_id>/reply")
@login_required
def reply(contact_id: int) -> ResponseReturnValue:
    """Send a reply; then back to the thread, or on to the conversation waiting longest.

    inbox.js asks for JSON (Accept: application/json) and stays on the page: {"sent":
    {"message_id", "body", "created_at"}, "idempotency_key": the next reply's, "next_url": the
    conversation to go on to, or null}; a refusal is {"error": why} with 400, 404 or 409.
    A reply that cannot be sent (the conversation was given to someone else, closed, or the
    person opted out) is never lost: the page says why and gives the text back.
    """
    form = ReplyForm()
    body = form.body.data or ""
    contact = find_conversation(contact_id)
    if contact is None:
        return reply_not_sent(body, gettext(REASSIGNED), None, 404)
    if not form.validate_on_submit():
        return reply_not_sent(
            body, gettext("Write a reply of up to 1,600 characters."), contact.campaign_id, 400
        )
    key = form.idempotency_key.data or ""
    campaign_id = contact.campaign_id
    queued: list[int] = []
    refusal = queue_once(
        key, lambda: queued.append(texts.queue_reply(contact, current_user, body, key))
    )
    if refusal:
        return reply_not_sent(body, refusal, campaign_id, 409)
    following = next_waiting(contact) if form.then_next.data else None
    if following is not None:
        flash(gettext("Reply sent. Here is the next person waiting."), "success")
    # `contact` is expired: its id was read above.
    if following is not None:
        target = url_for("inbox.conversation", contact_id=following.id, sent=contact_id)
    else:
        target = url_for("inbox.conversation", contact_id=contact_id, sent=contact_id)
    if not wants_json():
        return redirect(target)
    sent = (
        {"message_id": queued[0], "body": body.strip(), "created_at": utcnow().isoformat()}
        if queued
        else None  # the same form again: it was sent already
    )
    answer = {
        "sent": sent,
        "idempotency_key": new_key(),
        "next_url": target if following is not None else None,
    }
    return no_store(jsonify(answer))


REASSIGNED = texts.N_(
    "This conversation is no longer yours: an organizer gave it to another volunteer."
)


def reply_not_sent(
    body: str, reason: str, campaign_id: int | None, status: int
) -> ResponseReturnValue:
    """The page of a reply that was not sent: why, and the text, to copy (for inbox.js, JSON:
    the page keeps the text in its box)."""
    if wants_json():
        return no_store(jsonify(error=reason)), status
    page = render_template(
        "inbox/reply_not_sent.html", body=body, reason=reason, campaign_id=campaign_id
    )
    return page, status


@bp.post("/conversations/<int:contact_id>/close")
@login_required
def close(contact_id: int) -> ResponseReturnValue:
    """No reply needed: the conversation leaves the needs-reply list; on to the next one."""
    contact = get_conversation(contact_id)
    if DismissForm().validate_on_submit():
        contact.needs_reply = False
        contact.waiting_since = None
        contact.unread = 0
        tell_holder(contact, "closed")
        db.session.commit()
        flash(gettext("Conversation closed: no reply needed."), "success")
        following = next_waiting(contact)
        if following is not None:
            return redirect(url_for("inbox.conversation", contact_id=following.id))
    return redirect(url_for("inbox.conversations", campaign_id=contact.campaign_id))


def tell_holder(contact: Contact, change: str) -> None:
    """The conversation's volunteer hears live of a change someone else made (on commit)."""
    if contact.texter_id is not None and contact.texter_id != current_user.id:
        live.after_commit(
            db.session(), contact.texter_id, live.conversation_event([contact.id], change)
        )


@bp.post("/conversations/<int:contact_id>/opt-out")
@login_required
def opt_out(contact_id: int) -> ResponseReturnValue:
    contact = get_conversation(contact_id)
    form = OptOutForm()
    if form.validate_on_submit():
        confirmation = optouts.opt_out_contact(
            contact, "texter", current_user.id, confirm=bool(form.confirm.data)
        )
        contact.needs_reply = False
        contact.waiting_since = None
        tell_holder(contact, "opted_out")
        db.session.commit()
        if confirmation is not None:
            queue.wake_senders()
        flash(
            gettext("Opted out. Nobody in your organization can text this number again."),
            "success",
        )
    return redirect(url_for("inbox.conversation", contact_id=contact_id))  # `contact` is expired


@bp.post("/conversations/<int:contact_id>/not-an-opt-out")
@login_required
def dismiss_suggestion(contact_id: int) -> ResponseReturnValue:
    """The volunteer read the reply and it is not a request to stop."""
    contact = get_conversation(contact_id)
    if DismissForm().validate_on_submit():
        contact.opt_out_suggested = False
        audit.record(
            contact.campaign.organization_id,
            "opt_out_suggestion_dismissed",
            contact.cell,
            current_user.id,
        )
        db.session.commit()
    return redirect(url_for("inbox.conversation", contact_id=contact_id))  # `contact` is expired


# --- Pictures voters send ------------------------------------------------------------------


# Shown in a thread in place of a picture Twilio would not give (gone, too large, not an image).
UNAVAILABLE_PICTURE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="240" height="60" role="img">'
    b'<rect width="240" height="60" fill="#eee"/><text x="12" y="35" font-family="sans-serif"'
    b' font-size="14" fill="#333">Picture not available</text></svg>'
)


@bp.get("/media/<int:media_id>")
@login_required
def media(media_id: int) -> ResponseReturnValue:
    """A picture a voter sent, fetched from Twilio through gotv (never linked to Twilio), for
    whoever may read the conversation."""
    found = db.session.execute(
        select(MessageMedia, Message.contact_id, Message.account_sid)
        .join(Message, Message.id == MessageMedia.message_id)
        .where(MessageMedia.id == media_id, Message.organization_id == current_user.organization_id)
    ).first()
    contact = db.session.get(Contact, found[1]) if found and found[1] else None
    if found is None or contact is None:
        abort(404)
    may_converse(contact)
    try:
        kind, content = replies.picture(found[0], found[2])
    except sms.MediaRefused as refusal:
        log.warning("picture %s not shown: %s", media_id, refusal)
        kind, content = "image/svg+xml", UNAVAILABLE_PICTURE
    response = Response(content, mimetype=kind)
    response.headers["Cache-Control"] = "private, max-age=86400"
    response.headers["Content-Disposition"] = "inline"
    # Shown as an image only: nothing in it may run, even opened on its own.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# --- What the pages' scripts say -----------------------------------------------------------

STATUS_WORDS = {
    MessageStatus.QUEUED: texts.N_("queued"),
    MessageStatus.SENDING: texts.N_("sending"),
    MessageStatus.ACCEPTED: texts.N_("accepted"),
    MessageStatus.SENT: texts.N_("sent"),
    MessageStatus.DELIVERED: texts.N_("delivered"),
    MessageStatus.UNDELIVERED: texts.N_("undelivered"),
    MessageStatus.FAILED: texts.N_("failed"),
    MessageStatus.REFUSED: texts.N_("not sent"),
    MessageStatus.RECEIVED: texts.N_("received"),
}
KIND_WORDS = {
    MessageKind.TEXT: "",
    MessageKind.OPT_OUT_CONFIRMATION: texts.N_("opt-out confirmation"),
    MessageKind.HELP_REPLY: texts.N_("help reply"),
}


def message_status(status: MessageStatus) -> str:
    """A message's status in the page's language."""
    return translate(STATUS_WORDS.get(status, status.value))


def message_kind(kind: MessageKind) -> str:
    """A message's kind (empty for a volunteer's text) in the page's language."""
    word = KIND_WORDS.get(kind, kind.value)
    return translate(word) if word else ""


def script_strings_json() -> Markup:
    """`script_strings` as JSON for a <script> element, made once per language (and app: an
    app's catalogs are its own)."""
    made: dict[str, Markup] = current_app.extensions.setdefault("gotv.script_strings", {})
    language = current_language()
    if language not in made:
        made[language] = htmlsafe_json_dumps(script_strings())
    return made[language]


def script_strings() -> dict[str, Any]:
    """What send.js, inbox.js and contact_tools.js say, in the page's language ("{name}"-style
    places for the values): the pages carry it as JSON (inbox/_strings.html)."""
    return {
        "this_voter": gettext("this voter"),
        "ready": js_plural("%(num)s ready to text", "%(num)s ready to text"),
        "segments": js_plural("%(num)s segment", "%(num)s segments"),
        "sent_to": gettext("Sent to {name}."),
        "sent_count": js_plural(
            "%(num)s text sent this session.", "%(num)s texts sent this session."
        ),
        "batch_done": gettext("Your batch is done. Get another batch, or take a break: thank you!"),
        "batch_later": gettext(
            "Everyone left in your batch is outside their texting hours for now."
        ),
        "offline": gettext("Could not send: check your connection and press Send again."),
        "read_first": gettext(
            "Take a moment to read it: Send works once it has been on screen for half a second."
        ),
        "opens_at": js_plural(
            "%(num)s person opens at {time} their time", "%(num)s people open at {time} their time"
        ),
        "your_time": gettext("({time} your time)"),
        "waiting_badge": js_plural("%(num)s waiting", "%(num)s waiting"),
        "waiting_banner": js_plural(
            "%(num)s person is waiting for your reply.",
            "%(num)s people are waiting for your reply.",
        ),
        "new_reply": gettext("New reply from {name}"),
        "new_reply_says": gettext("{name} replied: “{body}”"),
        "answer_now": gettext("Answer now"),
        "unread": js_plural("%(num)s unread", "%(num)s unread"),
        "needs_reply": gettext("needs reply"),
        "maybe_opt_out": gettext("maybe an opt-out"),
        "opted_out_mark": gettext("opted out"),
        "waiting_for": gettext("waiting {time}"),
        "statuses": {status.value: message_status(status) for status in STATUS_WORDS},
        "changes": {
            "reassigned": gettext(REASSIGNED),
            "closed": gettext("Someone else closed this conversation: no reply is needed."),
            "opted_out": gettext(
                "This person opted out: nobody in your organization can text them."
                " No reply can be sent."
            ),
            "answered": gettext("Someone else answered this conversation."),
        },
        "kept": gettext("What you typed is kept below: copy it if you need it."),
        "moved_away": gettext("A conversation was given to another volunteer."),
        "copy": gettext("Copy"),
        "copied": gettext("Copied."),
        "draft_restored": gettext("Your unsent reply was put back in the box."),
        "reply_sent": gettext("Reply sent."),
        "inserted": gettext("Inserted “{title}”: check it, then send."),
        "remove": gettext("remove"),
        "remove_tag": gettext("Remove tag {name}"),
        "no_tags": gettext("No tags."),
        "no_next": gettext("Nobody else is waiting for a reply."),
    }


# --- Live updates --------------------------------------------------------------------------

# Set when this web process is shutting down (gotv/web/serving.py, on gunicorn's SIGTERM): its
# open streams end within a second, and the browsers reconnect to another process.
SHUTTING_DOWN = threading.Event()


def init_app(app: Flask) -> None:
    """The process's stream slots (a process builds its app once, so they are per process),
    and the Redis connections of its streams: one each, held for minutes, in a pool of their
    own, so that they never take the connections of the requests' publishes and enqueues."""
    app.jinja_env.globals.update(
        script_strings_json=script_strings_json,
        message_status=message_status,
        message_kind=message_kind,
    )
    limit = app.config.get("LIVE_STREAMS_PER_PROCESS", live.STREAMS_PER_PROCESS)
    app.extensions["gotv.live_slots"] = live.Slots(
        limit,
        per_user=app.config.get("LIVE_STREAMS_PER_USER") or live.STREAMS_PER_USER,
        per_organization=app.config.get("LIVE_STREAMS_PER_ORGANIZATION")
        or live.organization_limit(limit),
    )
    app.extensions["gotv.live_redis"] = Redis.from_url(
        app.config["REDIS_URL"], max_connections=max(1, limit)
    )


@bp.get("/events")
@login_required
def events() -> ResponseReturnValue:
    """Server-Sent Events for the signed-in user only: new replies, message statuses, changes
    to their conversations, and `signed_out` when their sessions end (gotv/texting/live.py)."""
    user_id, connection = current_user.id, current_app.extensions["gotv.live_redis"]
    config = current_app.config
    stream = live.stream(
        connection,
        user_id,
        current_user.organization_id,
        current_app.extensions["gotv.live_slots"],
        heartbeat_seconds=config.get("LIVE_HEARTBEAT_SECONDS", live.HEARTBEAT_SECONDS),
        stream_seconds=config.get("LIVE_STREAM_SECONDS", live.STREAM_SECONDS),
        stop=SHUTTING_DOWN,
        # gunicorn's: the stream gives its slot back as soon as the browser leaves.
        client=request.environ.get("gunicorn.socket"),
    )
    # No database work below: Flask tears the app context down (returning the session's
    # connection to the pool) before the stream is iterated, which takes minutes.
    response = Response(stream, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass events on as they come
    return response
