"""Which Twilio account each organization texts through, which senders it owns, and whose a
webhook is.

An organization texts through its own Twilio account (or subaccount) when it has connected one,
else through the instance's (the environment's TWILIO_ACCOUNT_SID). A sender address (a number
or a Messaging Service) belongs to one organization in the whole instance, a database fact
(`uq_sender_address`), and was found in the account it sends through when it was added. So a
reply to a number is its owner's, whatever else the voter was sent by other organizations, and
a text may leave only through its own organization's account.

Lookups the busy paths make (the outbox's gate, every webhook) are cached per process for
CACHE_SECONDS: a new token or sender takes effect within seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select

from gotv.db import db
from gotv.edge import sms
from gotv.models import Organization, Sender, TwilioAccount, utcnow
from gotv.people import audit

log = logging.getLogger(__name__)

CACHE_SECONDS = 5.0

# Why a text may not leave (the outbox's refusal reasons).
NO_SENDER = "no_sender"  # its organization has its own account: it must send from its senders
SENDER_NOT_OWNED = "sender_not_owned"  # the sender is not its organization's, in its account


class SenderRefused(Exception):
    """A sender or an account was not accepted; `str(error)` says why, for the organizer."""


# --- Accounts ------------------------------------------------------------------------------


def own_account(organization_id: int) -> TwilioAccount | None:
    """The organization's own Twilio account, if it connected one."""
    return db.session.scalars(
        select(TwilioAccount).where(TwilioAccount.organization_id == organization_id)
    ).first()


def credentials_of(account: TwilioAccount) -> sms.Credentials:
    return sms.Credentials(
        account.account_sid, account.auth_token, account.api_key_sid, account.api_key_secret
    )


def account_of(row: TwilioAccount | None) -> sms.Account:
    """The account texts go through: an organization's own, or (None) the instance's."""
    if row is None:
        return sms.instance_account()
    instance = sms.instance_account()
    return sms.Account(
        credentials_of(row),
        concurrency=row.concurrency or instance.concurrency,
        per_second=row.per_second,
        daily_cap=row.daily_cap,
    )


def connect(
    organization_id: int,
    account_sid: str,
    auth_token: str,
    api_key_sid: str | None,
    api_key_secret: str | None,
    user_id: int | None,
) -> TwilioAccount:
    """Make this Twilio account the organization's, after Twilio confirmed the credentials:
    the auth token (which signs the account's webhooks) and the API key, when one is given.
    Audited without the secrets; the caller commits.

    :raise SenderRefused: when Twilio refuses them, the account is another organization's or
        the instance's, or the organization has senders in another account.
    """
    given = sms.Credentials(account_sid, auth_token)
    if account_sid == sms.default_credentials().account_sid:
        raise SenderRefused("That is this instance's own Twilio account, not your organization's.")
    taken = db.session.scalars(
        select(TwilioAccount).where(TwilioAccount.account_sid == account_sid)
    ).first()
    if taken is not None and taken.organization_id != organization_id:
        raise SenderRefused("That Twilio account is already another organization's.")
    try:
        info = sms.fetch_account(given)
        if api_key_sid:
            sms.check_key(sms.Credentials(account_sid, auth_token, api_key_sid, api_key_secret))
    except sms.CarrierRefused as error:
        raise SenderRefused(str(error)) from error
    row = own_account(organization_id)
    if row is not None and row.account_sid != account_sid and senders_in(row.id):
        raise SenderRefused(
            "Your senders are in your current Twilio account: remove them before connecting "
            "another account."
        )
    if row is None:
        if senders_in(None, organization_id):
            raise SenderRefused(
                "Your senders are in this instance's Twilio account: remove them before "
                "connecting your own account, then add your own numbers."
            )
        row = TwilioAccount(organization_id=organization_id)
        db.session.add(row)
    action = "twilio_account_connected" if row.account_sid != account_sid else "twilio_key_changed"
    row.account_sid, row.auth_token = account_sid, auth_token
    row.api_key_sid, row.api_key_secret = api_key_sid or None, api_key_secret or None
    row.friendly_name, row.verified_at = info.friendly_name[:200], utcnow()
    audit.record(
        organization_id,
        action,
        account_sid,
        user_id,
        friendly_name=info.friendly_name,
        subaccount_of=info.parent_sid,
        uses_api_key=bool(api_key_sid),
    )
    db.session.flush()
    forget()
    return row


def disconnect(organization_id: int, user_id: int | None) -> None:
    """Stop using the organization's own account (it then texts through the instance's).

    :raise SenderRefused: while it has senders in that account.
    """
    row = own_account(organization_id)
    if row is None:
        return
    if senders_in(row.id):
        raise SenderRefused("Remove your senders in this account first.")
    audit.record(organization_id, "twilio_account_disconnected", row.account_sid, user_id)
    db.session.delete(row)
    db.session.flush()
    forget()


def set_limits(
    organization_id: int,
    concurrency: int | None,
    per_second: float | None,
    daily_cap: int | None,
    user_id: int | None,
) -> None:
    """Set the organization's own account's limits, audited. The caller commits."""
    row = own_account(organization_id)
    if row is None:
        raise SenderRefused("Connect your Twilio account first.")
    row.concurrency, row.per_second, row.daily_cap = concurrency, per_second, daily_cap
    audit.record(
        organization_id,
        "twilio_limits_changed",
        row.account_sid,
        user_id,
        concurrency=concurrency,
        per_second=per_second,
        daily_cap=daily_cap,
    )
    forget()


def create_subaccount(organization_id: int) -> TwilioAccount:
    """Give the organization a new subaccount of the instance's Twilio account, named after
    it, as its own account (an operator's command). The caller commits.

    :raise SenderRefused: when it has an account already, or Twilio refuses.
    """
    if own_account(organization_id) is not None:
        raise SenderRefused("This organization already has its own Twilio account.")
    organization = db.session.get(Organization, organization_id)
    if organization is None:
        raise SenderRefused(f"There is no organization {organization_id}.")
    try:
        made = sms.create_subaccount(sms.default_credentials(), f"gotv: {organization.name}")
    except sms.CarrierRefused as error:
        raise SenderRefused(str(error)) from error
    return connect(organization_id, made.account_sid, made.auth_token, None, None, None)


# --- Senders -------------------------------------------------------------------------------


def senders_in(account_id: int | None, organization_id: int | None = None) -> list[Sender]:
    """The senders added through an account (None: the instance's; then of one organization)."""
    query = select(Sender).where(
        Sender.twilio_account_id.is_(account_id)
        if account_id is None
        else Sender.twilio_account_id == account_id
    )
    if organization_id is not None:
        query = query.where(Sender.organization_id == organization_id)
    return list(db.session.scalars(query.order_by(Sender.id)))


def add_sender(
    organization_id: int,
    address: str,
    user_id: int | None,
    label: str = "",
    per_second: float | None = None,
    daily_cap: int | None = None,
) -> Sender:
    """A new sender of the organization, with its pace, once its Twilio account confirmed it
    holds the number or Messaging Service and no other organization has it. Audited; the
    caller commits.

    :raise SenderRefused: naming the reason.
    """
    held = db.session.scalars(select(Sender).where(Sender.address == address)).first()
    if held is not None:
        if held.organization_id == organization_id:
            raise SenderRefused(f"{address} is already one of your senders.")
        raise SenderRefused(f"{address} already belongs to another organization.")
    row = own_account(organization_id)
    account = account_of(row)
    if row is None and address == sms.instance_sender():
        raise SenderRefused(f"{address} is this instance's default sender, shared by everyone.")
    try:
        owned = sms.owns(account.credentials, address)
    except sms.CarrierRefused as error:
        raise SenderRefused(str(error)) from error
    if not owned:
        whose = "your Twilio account" if row else "this instance's Twilio account"
        raise SenderRefused(
            f"{address} is not in {whose} ({account.credentials.account_sid}): add a number "
            "or Messaging Service that account holds."
        )
    sender = Sender(
        organization_id=organization_id,
        address=address,
        twilio_account_id=row.id if row else None,
    )
    db.session.add(sender)
    db.session.flush()  # the unique address is the last word on a race
    audit.record(
        organization_id, "sender_added", address, user_id, account=account.credentials.account_sid
    )
    forget()
    return sender


# --- Which account a text goes through -------------------------------------------------------

T = TypeVar("T")
_cache: dict[tuple[object, ...], tuple[float, object]] = {}


def _cached(key: tuple[object, ...], load: Callable[[], T]) -> T:
    hit = _cache.get(key)
    if hit is None or hit[0] < time.monotonic():
        hit = (time.monotonic() + CACHE_SECONDS, load())
        _cache[key] = hit
    return hit[1]  # type: ignore[return-value]


def forget() -> None:
    """Drop this process's cached lookups (a change of account or sender was just made)."""
    _cache.clear()


def sending_account(organization_id: int, sender: str) -> sms.Account | str:
    """The account a text of the organization from `sender` ("" for the instance's default
    sender) goes through, or why it may not go: NO_SENDER when the organization has its own
    account (it texts from its own senders only), SENDER_NOT_OWNED when the sender is not the
    organization's in the account it texts through."""
    return _cached(
        ("send", organization_id, sender), lambda: _sending_account(organization_id, sender)
    )


def _sending_account(organization_id: int, sender: str) -> sms.Account | str:
    row = own_account(organization_id)
    if not sender:
        return NO_SENDER if row is not None else sms.instance_account()
    found = db.session.scalars(select(Sender).where(Sender.address == sender)).first()
    if found is None or found.organization_id != organization_id:
        return SENDER_NOT_OWNED
    if found.twilio_account_id != (row.id if row else None):
        return SENDER_NOT_OWNED  # added through an account the organization no longer uses
    return account_of(row)


def launch_refusal(organization_id: int, sender: str) -> str | None:
    """Why a campaign sending from `sender` ("" for the default) cannot be launched, in words
    for the organizer, or None."""
    account = _sending_account(organization_id, sender)
    if account == NO_SENDER:
        return (
            "Your organization texts through its own Twilio account: choose one of its senders "
            "for this campaign first."
        )
    if account == SENDER_NOT_OWNED:
        return (
            "This campaign's sender is not in your organization's Twilio account: choose another."
        )
    return None


def credentials_for(account_sid: str) -> sms.Credentials | None:
    """The credentials of a Twilio account gotv knows (an organization's, or the instance's),
    by its SID: what checks the webhooks it signs and settles what was sent through it."""
    return _cached(("sid", account_sid), lambda: _credentials_for(account_sid))


def _credentials_for(account_sid: str) -> sms.Credentials | None:
    instance = sms.default_credentials()
    if account_sid == instance.account_sid:
        return instance
    row = db.session.scalars(
        select(TwilioAccount).where(TwilioAccount.account_sid == account_sid)
    ).first()
    return credentials_of(row) if row is not None else None


# --- Whose a webhook is ----------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """Who a voter's text to one of our senders is for.

    `sender` is the address the conversation was texted from ("" for the instance's default
    sender). An owned sender's `organization_id` is its owner; the default sender is shared
    by the organizations without an account of their own (None).
    """

    sender: str
    organization_id: int | None


# Received by one of our accounts at an address another of our accounts holds: forged, or
# Twilio misconfigured; refused outright.
FOREIGN = Recipient("", -1)


def recipient_of(account_sid: str, to: str, service_sid: str) -> Recipient | None:
    """Whose a text received by the account at `to` (through the Messaging Service
    `service_sid`, or "") is: the organization owning that sender, the shared default sender,
    None when no organization uses the number, FOREIGN when another account holds it."""
    return _cached(
        ("to", account_sid, to, service_sid), lambda: _recipient(account_sid, to, service_sid)
    )


def _recipient(account_sid: str, to: str, service_sid: str) -> Recipient | None:
    for address in (service_sid, to):
        if not address:
            continue
        sender = db.session.scalars(select(Sender).where(Sender.address == address)).first()
        if sender is None:
            continue
        row = (
            db.session.get(TwilioAccount, sender.twilio_account_id)
            if sender.twilio_account_id
            else None
        )
        through = row.account_sid if row else sms.default_credentials().account_sid
        if through != account_sid:
            return FOREIGN
        return Recipient(sender.address, sender.organization_id)
    if account_sid == sms.default_credentials().account_sid and sms.instance_sender() in (
        to,
        service_sid,
    ):
        return Recipient("", None)
    return None
