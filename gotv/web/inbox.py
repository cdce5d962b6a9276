"""Volunteers: batches, the send loop for initial texts, and their conversations.

Every page works as plain forms; send.js and inbox.js add the JSON send loop and live updates
(`/texting/events`, Server-Sent Events fed by Redis pub/sub, see gotv/texting/live.py) on top.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeGuard

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
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from redis import Redis
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, contains_eager, joinedload
from wtforms import BooleanField, HiddenField, TextAreaField
from wtforms.validators import DataRequired, Length

from gotv import ids
from gotv.compliance import optouts
from gotv.db import db, execute_core
from gotv.edge import queue, sms
from gotv.models import (
    Campaign,
    CampaignStatus,
    Contact,
    ContactStatus,
    Message,
    MessageMedia,
    utcnow,
)
from gotv.people import audit
from gotv.texting import assignment, live, replies, segments, texts
from gotv.web.auth import get_owned
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
    contact = db.session.get(Contact, contact_id, options=[joinedload(Contact.campaign)])
    if contact is None:
        abort(404)
    return may_converse(contact)


def may_converse(contact: Contact) -> Contact:
    """`contact`, if the user may see its conversation: theirs, or an organizer's in the org.

    :raise 404: otherwise (never 403, which would tell a stranger that it exists).
    """
    if contact.campaign.organization_id != current_user.organization_id:
        abort(404)
    if contact.texter_id != current_user.id and not current_user.is_organizer:
        abort(404)
    return contact


def queue_once(idempotency_key: str, queue_message: Callable[[], object]) -> str | None:
    """Queue a text unless this form was already sent; commit; wake a send pump.

    Returns why the text may not be sent (nothing is written then), or None. The key is looked
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
        return str(refusal)
    assignment.touch(current_user, utcnow())
    db.session.commit()
    queue.wake_senders()
    return None


def send_initial_once(
    campaign: Campaign | texts.CampaignRow, contact_id: int, idempotency_key: str
) -> str | None:
    """`queue_once` for a contact's initial text."""
    return queue_once(
        idempotency_key,
        lambda: texts.queue_initial(campaign, contact_id, current_user, idempotency_key, utcnow()),
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
    return render_template("inbox/index.html", campaigns=campaigns, waiting=waiting)


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
        **state,
    )


def loop_state(campaign: Campaign, now: datetime) -> dict[str, Any]:
    """What the send screen shows: the batch, replies waiting, and when quiet hours lift."""
    batch = (
        assignment.batch(campaign, current_user, now, PREFETCH)
        if campaign.is_active
        else assignment.Batch()
    )
    return {
        "batch": batch,
        "contact": batch.ready[0] if batch.ready else None,
        "replies_waiting": assignment.replies_waiting(campaign, current_user),
        # Only when the batch is empty, and only if nobody may be texted now.
        "pool_opens_at": pool_opening(campaign, now)
        if campaign.is_active and not batch.held
        else None,
    }


def pool_opening(campaign: Campaign, now: datetime) -> datetime | None:
    """When someone the volunteer could take opens, if nobody may be texted right now."""
    opens = texts.next_opening(campaign, current_user, now)
    return opens if opens is not None and opens > now else None


@bp.post("/<int:campaign_id>/batch")
@login_required
def take_batch(campaign_id: int) -> ResponseReturnValue:
    """ "Get N contacts": lock up to a batch of free contacts to this volunteer."""
    campaign = get_owned(Campaign, campaign_id)
    if BatchForm().validate_on_submit():
        try:
            taken = assignment.take_batch(campaign, current_user, utcnow())
        except assignment.BatchRefused as refusal:
            db.session.rollback()
            flash(str(refusal), "error")
        else:
            db.session.commit()
            if taken:
                flash(f"{taken} new contacts are yours to text.", "success")
            else:
                flash("Nobody more can be texted right now.", "error")
    return redirect(url_for("inbox.send_loop", campaign_id=campaign.id))


@bp.post("/<int:campaign_id>/batch/release")
@login_required
def release_batch(campaign_id: int) -> ResponseReturnValue:
    """ "I'm done for now": the volunteer's unsent contacts go back for others to text."""
    campaign = get_owned(Campaign, campaign_id)
    if BatchForm().validate_on_submit():
        released = assignment.release(campaign, current_user)
        db.session.commit()
        flash(f"Thank you! {released} unsent contacts went back to the team.", "success")
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
    that may not be texted is refused with 409 and {"error": str, "next": [...], "after": int}.
    """
    campaign = sending_campaign(campaign_id)
    sent = request.get_json(silent=True) or {}
    contact_id, key = sent.get("contact_id"), sent.get("idempotency_key")
    after, want = sent.get("after", 0), sent.get("want", 0)
    if not (is_int(contact_id) and is_int(after) and is_int(want)):
        abort(400)
    if not isinstance(key, str) or not 16 <= len(key) <= 64:
        abort(400)
    # Before the send: its commit expires the campaign and the user, which rendering reads.
    top_up = next_ready(campaign, after, want, leaving_out=contact_id)
    refusal = send_initial_once(campaign, contact_id, key)
    if refusal:
        return no_store(jsonify(error=refusal, **top_up)), 409
    return no_store(jsonify(sent={"contact_id": contact_id}, **top_up))


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


def next_ready(
    campaign: Campaign | texts.CampaignRow, after: int, want: int, leaving_out: int
) -> dict[str, Any]:
    """Up to `want` (at most PREFETCH) ready contacts of the batch after id `after`, rendered."""
    if not campaign.is_active:
        return {"next": [], "after": after}
    contacts, last = assignment.next_ready(
        campaign, current_user, utcnow(), after, min(want, PREFETCH), leaving_out=leaving_out
    )
    return {"next": [ready_contact(campaign, contact) for contact in contacts], "after": last}


def queue_payload(campaign: Campaign, now: datetime) -> dict[str, Any]:
    """The JSON shape of `loop_state`, each ready contact with its own send key."""
    state = loop_state(campaign, now)
    batch: assignment.Batch = state["batch"]
    pool_opens_at: datetime | None = state["pool_opens_at"]
    return {
        "active": campaign.is_active,
        "ready": [ready_contact(campaign, contact) for contact in batch.ready],
        "after": batch.ready[-1].id if batch.ready else 0,
        "ready_count": batch.ready_count,
        "held": batch.held,
        "later": [
            {
                "count": group.count,
                "opens_at": group.opens_at.isoformat(),
                "local_time": group.local_time,
            }
            for group in batch.later
        ],
        "replies_waiting": state["replies_waiting"],
        "pool_opens_at": pool_opens_at.isoformat() if pool_opens_at else None,
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


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Conversations -------------------------------------------------------------------------


@bp.get("/<int:campaign_id>/conversations")
@login_required
def conversations(campaign_id: int) -> ResponseReturnValue:
    """The volunteer's inbox: conversations needing a reply first, most unread first."""
    campaign = get_owned(Campaign, campaign_id)
    contacts = execute_core(
        _CONVERSATIONS, {"campaign": campaign.id, "texter": current_user.id}
    ).all()
    # Each row links to its thread: the URL is built once, not once per row.
    thread_url = url_for("inbox.conversation", contact_id=0).removesuffix("0")
    return render_template(
        "inbox/conversations.html", campaign=campaign, contacts=contacts, thread_url=thread_url
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
    )
    .where(
        Contact.campaign_id == bindparam("campaign"),
        Contact.texter_id == bindparam("texter"),
        Contact.status == ContactStatus.TEXTED,
    )
    .order_by(Contact.needs_reply.desc(), Contact.updated_at.desc(), Contact.id.desc())
    .limit(200)
)


def next_waiting(contact: Contact) -> Contact | None:
    """Another of the volunteer's conversations in the campaign that needs a reply."""
    return db.session.scalars(
        select(Contact)
        .where(
            Contact.campaign_id == contact.campaign_id,
            Contact.texter_id == current_user.id,
            Contact.needs_reply.is_(True),
            Contact.id != contact.id,
        )
        .order_by(Contact.updated_at.desc(), Contact.id.desc())
        .limit(1)
    ).first()


@bp.get("/conversations/<int:contact_id>")
@login_required
def conversation(contact_id: int) -> ResponseReturnValue:
    found = db.session.execute(
        _CONVERSATION_PAGE, {"contact": contact_id, "user": current_user.id}
    ).first()
    if found is None:
        abort(404)
    contact, opted_out, skip_to = found
    may_converse(contact)
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
        idempotency_key=new_key(),
        skip_to=skip_to,
    )
    if reading:
        # After rendering: a commit expires every row the page shows (each would be loaded
        # again, one query each).
        db.session.commit()
    return page


# The contact and its campaign, whether the number opted out, and the id of the user's next
# conversation in the campaign waiting for a reply (`next_waiting`): one query, built once.
_waiting = aliased(Contact)
_CONVERSATION_PAGE = (
    select(
        Contact,
        optouts.opted_out(Campaign.organization_id, Contact.cell).label("opted_out"),
        select(_waiting.id)
        .where(
            _waiting.campaign_id == Contact.campaign_id,
            _waiting.texter_id == bindparam("user"),
            _waiting.needs_reply.is_(True),
            _waiting.id != Contact.id,
        )
        .order_by(_waiting.updated_at.desc(), _waiting.id.desc())
        .limit(1)
        .scalar_subquery()
        .label("skip_to"),
    )
    .join(Contact.campaign)
    .options(contains_eager(Contact.campaign))
    .where(Contact.id == bindparam("contact"))
)


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
    contact = get_conversation(contact_id)
    form = ReplyForm()
    if not form.validate_on_submit():
        flash("Write a reply of up to 1,600 characters.", "error")
    else:
        key = form.idempotency_key.data or ""
        flash_refusal(
            queue_once(
                key, lambda: texts.queue_reply(contact, current_user, form.body.data or "", key)
            )
        )
    return redirect(url_for("inbox.conversation", contact_id=contact_id))  # `contact` is expired


@bp.post("/conversations/<int:contact_id>/close")
@login_required
def close(contact_id: int) -> ResponseReturnValue:
    """No reply needed: the conversation leaves the needs-reply list; on to the next one."""
    contact = get_conversation(contact_id)
    if DismissForm().validate_on_submit():
        contact.needs_reply = False
        contact.unread = 0
        db.session.commit()
        flash("Conversation closed: no reply needed.", "success")
        following = next_waiting(contact)
        if following is not None:
            return redirect(url_for("inbox.conversation", contact_id=following.id))
    return redirect(url_for("inbox.conversations", campaign_id=contact.campaign_id))


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
        db.session.commit()
        if confirmation is not None:
            queue.wake_senders()
        flash("Opted out. Nobody in your organization can text this number again.", "success")
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


# --- Live updates --------------------------------------------------------------------------

# Set when this web process is shutting down (gotv/web/serving.py, on gunicorn's SIGTERM): its
# open streams end within a second, and the browsers reconnect to another process.
SHUTTING_DOWN = threading.Event()


def init_app(app: Flask) -> None:
    """The process's stream slots (a process builds its app once, so they are per process),
    and the Redis connections of its streams: one each, held for minutes, in a pool of their
    own, so that they never take the connections of the requests' publishes and enqueues."""
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
    """Server-Sent Events for the signed-in user only: new replies and message statuses."""
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
