"""Recognising opt-out and opt-in replies.

We match on our own rather than trusting Twilio, which only blocks single-word keywords and so
misses the FCC's "opt out" and the common "stop all" (see docs/compliance in the research notes).
A reply is compared whole, after trimming, collapsing spaces, dropping punctuation and emoji, and
case-folding, so "Stop." and " STOP\\n" count while "I'll stop by the polls" does not.
"""

from __future__ import annotations

import re
import unicodedata

# Twilio's defaults (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT), the FCC's
# listed words (stop, quit, end, revoke, opt out, cancel, unsubscribe), "stop all", and Spanish.
OPT_OUT_KEYWORDS = frozenset(
    {
        "stop",
        "stopall",
        "stop all",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "revoke",
        "optout",
        "opt out",
        "opt-out",
        "alto",
        "parar",
        "para",
        "basta",
        "no mas",
        "cancelar",
    }
)
# Twilio lifts its own block on these; we lift ours too so the two never disagree.
OPT_IN_KEYWORDS = frozenset({"start", "unstop"})


def normalize(body: str) -> str:
    """Case-folded words of `body` with accents, punctuation and emoji removed."""
    decomposed = unicodedata.normalize("NFKD", body)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    words = re.sub(r"[^\w\s-]", " ", letters.casefold()).replace("_", " ").split()
    # Keep the hyphen inside "opt-out" but not one standing alone, as in "Stop -".
    return " ".join(word.strip("-") for word in words if word.strip("-"))


def is_opt_out(body: str) -> bool:
    """True when the whole reply is an opt-out keyword."""
    return normalize(body) in OPT_OUT_KEYWORDS


def is_opt_in(body: str) -> bool:
    """True when the whole reply asks to be subscribed again."""
    return normalize(body) in OPT_IN_KEYWORDS
