"""Passwords: the one rule for a new password, and checking one at a cost that tells nothing.

The web (joining through an invitation, changing a password) and `flask create-user` ask
`problem` alike. `verify` hashes the password it is given whether or not an account was found,
so signing in takes as long for an email nobody has as for a real one.
"""

from __future__ import annotations

import secrets
from functools import cache

from gotv.models import User

MIN_LENGTH = 10
# Long enough for any passphrase; a longer one only makes hashing it cost more.
MAX_LENGTH = 200
# How the stand-in of `verify` is hashed: None, as `User.set_password` hashes (werkzeug's
# default). Only tests change it, to the cheap method their users' hashes are made with.
STAND_IN_METHOD: str | None = None


# The rule's words, the limit apart, so that a page can say them in its language (gotv/web).
TOO_SHORT = "Use at least %(num)s characters."
TOO_LONG = "Use at most %(num)s characters."


def problem(password: str) -> str | None:
    """What is wrong with `password` as a new password, in words for its owner; None if fine."""
    broken = broken_rule(password)
    return broken[0] % {"num": broken[1]} if broken else None


def broken_rule(password: str) -> tuple[str, int] | None:
    """The words of the rule `password` breaks as a new password (TOO_SHORT or TOO_LONG) and
    the limit that goes in them; None if it breaks none."""
    if len(password) < MIN_LENGTH:
        return TOO_SHORT, MIN_LENGTH
    if len(password) > MAX_LENGTH:
        return TOO_LONG, MAX_LENGTH
    return None


def verify(user: User | None, password: str) -> bool:
    """Whether `password` is `user`'s. With no user, a hash of the same kind and cost as a new
    password's is checked anyway, and False returned."""
    if user is None:
        stand_in().check_password(password)
        return False
    return user.check_password(password)


@cache
def stand_in() -> User:
    """A user that is never stored, whose password nobody knows, hashed as `set_password`
    hashes any (made once a process, when first needed)."""
    nobody = User()
    nobody.set_password(secrets.token_urlsafe(32), STAND_IN_METHOD)
    return nobody
