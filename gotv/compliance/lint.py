"""First-message linting: what an initial script should say before a campaign launches.

Carriers filter (error 30007) first messages that hide who is texting, and good practice, and
several state laws, expect a way to opt out in the first text (CTIA; compliance notes §4).
"""

from __future__ import annotations

import re

# "Reply STOP …", "Text STOP to end", "Responde ALTO …": a verb of replying, then the keyword.
OPT_OUT_LANGUAGE = re.compile(
    r"\b(reply|text|txt|send|respond|responde|responda|envía|envia|escribe)\b"
    r"[^.!?]{0,20}\b(stop|alto|parar|baja)\b",
    re.IGNORECASE,
)
OPT_OUT_SENTENCE = "Reply STOP to opt out."


def warnings(script: str, organization_name: str) -> list[str]:
    """What the organizer should fix in a first message, in plain words (empty when fine)."""
    found = []
    names_sender = "{texter_name}" in script or (
        organization_name.strip() and organization_name.strip().lower() in script.lower()
    )
    if not names_sender:
        found.append(
            "Say who is texting: include {texter_name} or your organization's name, or carriers "
            "may filter the message as spam."
        )
    if not OPT_OUT_LANGUAGE.search(script):
        found.append(f"Tell people how to stop, for example “{OPT_OUT_SENTENCE}”")
    return found


def with_opt_out_language(script: str) -> str:
    """The script with the standard opt-out sentence appended (unchanged if it has one)."""
    if OPT_OUT_LANGUAGE.search(script):
        return script
    return script.rstrip() + " " + OPT_OUT_SENTENCE


def needs_opt_out_language(script: str) -> bool:
    """True when the script does not yet tell people how to stop."""
    return not OPT_OUT_LANGUAGE.search(script)
