"""Two-step sign-in: after the password, a 6-digit code from an authenticator app (TOTP).

Codes follow RFC 6238 (30-second steps, SHA-1, 6 digits: what every authenticator app speaks),
checked with pyotp. A code is accepted one step early or late, for clocks a little off, and
never twice: the last step accepted is stored, so a code seen over a shoulder is useless.
"""

from __future__ import annotations

from datetime import datetime

import pyotp
import segno
from pyotp.utils import strings_equal
from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value

from gotv.db import db
from gotv.models import User
from gotv.people import audit

ISSUER = "gotv"
# Steps either side of now that still count: 30 seconds of clock drift each way.
DRIFT_STEPS = 1


def new_secret() -> str:
    """A fresh random secret (160 bits, base32), as authenticator apps expect."""
    return pyotp.random_base32()


def provisioning_uri(secret: str, account: str) -> str:
    """The otpauth:// link an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER)


def qr_code_svg(uri: str) -> str:
    """The QR code of `uri` as inline <svg> markup (inline SVG needs no CSP exception)."""
    code = segno.make(uri, error="m")
    svg: str = code.svg_inline(scale=5, dark="#1d2433", light="#fff", title="QR code")
    return svg


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is (within DRIFT_STEPS of now), or None."""
    code = "".join(code.split())
    if len(code) != 6 or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if strings_equal(totp.generate_otp(step), code):
            return step
    return None


def check_code(user: User, code: str, now: datetime) -> bool:
    """Whether `code` is the user's current code and was not used before; if so, uses it up.

    Using it up is a conditional UPDATE, so two sign-ins racing with one code cannot both pass.
    A user without two-step sign-in has no code to check: False.
    """
    if not user.totp_secret:
        return False
    step = matching_step(user.totp_secret, code, now)
    if step is None:
        return False
    used = db.session.execute(
        update(User)
        .where(
            User.id == user.id,
            User.totp_last_step.is_(None) | (User.totp_last_step < step),
        )
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(user, "totp_last_step", step)
    return True


def enable(user: User, secret: str, code: str, now: datetime) -> bool:
    """Turn on two-step sign-in with `secret`, once `code` proves the app has it. Audited."""
    step = matching_step(secret, code, now)
    if step is None:
        return False
    user.totp_secret = secret
    user.totp_last_step = step
    audit.record(user.organization_id, "two_factor_enabled", user.email, user.id)
    return True


def disable(user: User, code: str, now: datetime) -> bool:
    """Turn off two-step sign-in, given a current code. Audited."""
    if not check_code(user, code, now):
        return False
    user.totp_secret = None
    user.totp_last_step = None
    audit.record(user.organization_id, "two_factor_disabled", user.email, user.id)
    return True
