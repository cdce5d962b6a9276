"""Ending a user's sessions: sign out everywhere, a new password, suspension.

Sessions are signed cookies, kept by the browser, so gotv cannot delete one. Each holds the
user's session generation from when it began (`User.get_id`), and the user loader accepts it only
while the user's generation is the same: raising the generation ends every session at its next
request, wherever it was copied to. Plain rules; the caller commits, then tells the user's open
live streams (gotv.texting.live.sign_out) so they close too.
"""

from __future__ import annotations

from gotv.models import User
from gotv.people import audit


def end_all(user: User, audited_as: str | None = None) -> None:
    """End every session of `user`; with `audited_as` (signed_out_everywhere,
    password_changed), record it in the audit log. (A plain sign-out is not audited.)"""
    user.session_generation = (user.session_generation or 0) + 1
    if audited_as:
        audit.record(user.organization_id, "sessions_ended", user.email, user.id, why=audited_as)
