"""The organization's team: invitation links, roles, and suspending members.

Plain rules with no Flask: the views (gotv/web/team.py) call them, then commit. Every change is
audited in the caller's transaction. A request the rules refuse raises `TeamRuleBroken`, whose
message is written for the organizer who made it.

Who may do what:
- owners invite anyone, change anyone's role but their own, suspend and reinstate anyone but
  themselves;
- admins invite texters, and suspend and reinstate texters;
- no change may leave the organization without an owner who can sign in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from gotv.db import db
from gotv.models import Campaign, Contact, ContactStatus, Invite, Role, User, utcnow
from gotv.people import audit, passwords, sessions

INVITE_LIFETIME = timedelta(days=14)
MIN_PASSWORD_LENGTH = passwords.MIN_LENGTH


class TeamRuleBroken(Exception):
    """The rules refuse this change; str() says why, in words for the person who asked."""


# Joining with an email that has an account. It does not say so: an invitation link may be in
# many hands, and its sign-up form must not tell them who has an account.
CANNOT_JOIN_WITH_EMAIL = (
    "That email cannot join through this link. If you already have a gotv account, sign in "
    "first and then open the link again; otherwise check the address."
)


# --- Invitations ---------------------------------------------------------------------------


def may_invite(inviter: User, role: Role) -> bool:
    """Owners may invite any role; admins only texters; texters nobody."""
    if inviter.role == Role.OWNER:
        return True
    return inviter.role == Role.ADMIN and role == Role.TEXTER


def hash_token(token: str) -> str:
    """What the database keeps of a link's token: its SHA-256, in hex.

    A plain hash is enough: the token is 32 random bytes, so there is nothing to brute-force.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def create_invite(
    inviter: User,
    role: Role,
    now: datetime,
    campaign: Campaign | None = None,
    lifetime: timedelta = INVITE_LIFETIME,
    max_uses: int | None = None,
) -> tuple[Invite, str]:
    """A new invitation to join `inviter`'s organization as `role`, and its secret token.

    The token is stored nowhere (only its hash), so the caller shows the link now or never.

    :raise TeamRuleBroken: when the inviter may not invite that role, or the campaign belongs to
        another organization.
    """
    if not may_invite(inviter, role):
        raise TeamRuleBroken(f"Only owners may invite {role.value}s.")
    if campaign is not None and campaign.organization_id != inviter.organization_id:
        raise TeamRuleBroken("That campaign is not one of yours.")
    token = secrets.token_urlsafe(32)
    invite = Invite(
        organization_id=inviter.organization_id,
        token_hash=hash_token(token),
        role=role,
        campaign_id=campaign.id if campaign else None,
        created_by_id=inviter.id,
        created_at=now,
        expires_at=now + lifetime,
        max_uses=max_uses,
        uses=0,
    )
    db.session.add(invite)
    db.session.flush()
    audit.record(
        inviter.organization_id,
        "invite_created",
        f"invite {invite.id}",
        inviter.id,
        role=role.value,
        campaign_id=invite.campaign_id,
        expires_at=invite.expires_at.isoformat(),
        max_uses=max_uses,
    )
    return invite, token


def find_invite(token: str) -> Invite | None:
    """The invitation a link's token opens, whatever its state; None for a made-up token."""
    return db.session.scalars(select(Invite).where(Invite.token_hash == hash_token(token))).first()


def why_closed(invite: Invite, now: datetime) -> str | None:
    """Why the link no longer lets anyone join ("revoked", "expired", "used up"), or None."""
    if invite.revoked_at is not None:
        return "revoked"
    if invite.expires_at <= now:
        return "expired"
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return "used up"
    return None


def open_invites(organization_id: int, now: datetime) -> list[Invite]:
    """The organization's invitations that still let people join, newest first."""
    invites = db.session.scalars(
        select(Invite)
        .where(
            Invite.organization_id == organization_id,
            Invite.revoked_at.is_(None),
            Invite.expires_at > now,
        )
        .order_by(Invite.created_at.desc(), Invite.id.desc())
    )
    return [invite for invite in invites if why_closed(invite, now) is None]


def revoke_invite(invite: Invite, by: User, now: datetime) -> None:
    """Close the link for good. :raise TeamRuleBroken: if `by` could not have created it."""
    if not may_invite(by, invite.role):
        raise TeamRuleBroken(f"Only owners may revoke invitations for {invite.role.value}s.")
    if invite.revoked_at is None:
        invite.revoked_at = now
        audit.record(invite.organization_id, "invite_revoked", f"invite {invite.id}", by.id)


def join(invite: Invite, name: str, email: str, password: str, now: datetime) -> User:
    """Create the member the invitation admits, counting one use of it.

    The use is counted with a conditional UPDATE, so two people racing for the last use of a
    link cannot both get in.

    :raise TeamRuleBroken: when the password breaks the rule, the email cannot be used (it has
        an account: the message does not say so), or the link closed meanwhile (the caller
        rolls back).
    """
    trouble = passwords.problem(password)
    if trouble:
        raise TeamRuleBroken(trouble)
    user = User(
        organization_id=invite.organization_id,
        name=name.strip(),
        email=email,
        role=invite.role,
        created_at=now,
    )
    # Hashed first, so that an email with an account costs what a new one does.
    user.set_password(password)
    email_taken = TeamRuleBroken(CANNOT_JOIN_WITH_EMAIL)
    if db.session.scalars(select(User.id).where(User.email == email.strip().lower())).first():
        raise email_taken
    counted = db.session.execute(
        update(Invite)
        .where(
            Invite.id == invite.id,
            Invite.revoked_at.is_(None),
            Invite.expires_at > now,
            (Invite.max_uses.is_(None)) | (Invite.uses < Invite.max_uses),
        )
        .values(uses=Invite.uses + 1)
        .execution_options(synchronize_session=False)
    )
    if counted.rowcount != 1:  # type: ignore[attr-defined]
        raise TeamRuleBroken("This invitation link no longer works. Ask for a new one.")
    db.session.refresh(invite)
    try:
        with db.session.begin_nested():  # the same email signing up twice at once
            db.session.add(user)
    except IntegrityError:
        raise email_taken from None
    audit.record(
        invite.organization_id,
        "invite_used",
        f"invite {invite.id}",
        user.id,
        email=user.email,
        role=invite.role.value,
    )
    return user


# --- Members, roles and suspension ---------------------------------------------------------


def members(organization_id: int) -> list[User]:
    """Everyone in the organization: owners, then admins, then texters, by name."""
    rank = {Role.OWNER: 0, Role.ADMIN: 1, Role.TEXTER: 2}
    people = db.session.scalars(select(User).where(User.organization_id == organization_id))
    return sorted(people, key=lambda user: (rank[user.role], user.name.lower(), user.id))


def may_manage(actor: User, member: User) -> bool:
    """Whether `actor` may suspend or reinstate `member`: owners anyone else, admins texters."""
    if actor.organization_id != member.organization_id or actor.id == member.id:
        return False
    if actor.role == Role.OWNER:
        return True
    return actor.role == Role.ADMIN and member.role == Role.TEXTER


def is_last_owner(member: User) -> bool:
    """Whether `member` is the organization's only owner who can sign in.

    The owners' rows are locked (on PostgreSQL), so two owners demoting each other at once
    cannot both succeed.
    """
    if member.role != Role.OWNER or member.suspended_at is not None:
        return False
    owners = db.session.scalars(
        select(User.id)
        .where(
            User.organization_id == member.organization_id,
            User.role == Role.OWNER,
            User.suspended_at.is_(None),
        )
        .with_for_update()
    ).all()
    return list(owners) == [member.id]


def change_role(member: User, role: Role, by: User) -> None:
    """Give `member` a new role. Only owners change roles, never their own.

    :raise TeamRuleBroken: for anyone but an owner, for one's own role, or when it would leave
        the organization without an owner.
    """
    if by.role != Role.OWNER or by.organization_id != member.organization_id:
        raise TeamRuleBroken("Only owners change roles.")
    if by.id == member.id:
        raise TeamRuleBroken("Nobody changes their own role; ask another owner.")
    if member.role == role:
        return
    if role != Role.OWNER and is_last_owner(member):
        raise TeamRuleBroken(f"{member.name} is the last owner; make someone else owner first.")
    audit.record(
        member.organization_id,
        "role_changed",
        member.email,
        by.id,
        before=member.role.value,
        after=role.value,
    )
    member.role = role


def release_unsent_contacts(user_id: int) -> int:
    """Hand back the contacts assigned to this texter that they have not texted yet.

    Their status stays `new` and their texter becomes None, so any volunteer's send loop picks
    them up. Contacts already texted keep their texter: those are conversations, which an
    organizer reassigns on purpose. Runs in the caller's transaction; returns how many were
    released.
    """
    result = db.session.execute(
        update(Contact)
        .where(Contact.texter_id == user_id, Contact.status == ContactStatus.NEW)
        .values(texter_id=None, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    released: int = result.rowcount  # type: ignore[attr-defined]
    return released


def suspend(member: User, by: User, now: datetime) -> int:
    """Suspend `member`: they cannot sign in, their sessions end at their next request (the
    caller closes their live streams after the commit), and their untexted contacts are
    released, all in this transaction.

    Returns how many contacts were released (0 if they were already suspended).

    :raise TeamRuleBroken: when `by` may not manage `member`, or `member` is the last owner.
    """
    if not may_manage(by, member):
        raise TeamRuleBroken(refusal(by, member))
    if member.suspended_at is not None:
        return 0
    if is_last_owner(member):
        raise TeamRuleBroken(f"{member.name} is the last owner and cannot be suspended.")
    member.suspended_at = now
    sessions.end_all(member)  # (the suspension itself is what the audit log records)
    released = release_unsent_contacts(member.id)
    audit.record(member.organization_id, "member_suspended", member.email, by.id, released=released)
    return released


def reinstate(member: User, by: User) -> None:
    """Let a suspended member sign in again. :raise TeamRuleBroken: as for `suspend`."""
    if not may_manage(by, member):
        raise TeamRuleBroken(refusal(by, member))
    if member.suspended_at is None:
        return
    member.suspended_at = None
    audit.record(member.organization_id, "member_reinstated", member.email, by.id)


def refusal(actor: User, member: User) -> str:
    if actor.id == member.id:
        return "You cannot suspend or reinstate yourself."
    return "Admins manage texters only; ask an owner."
