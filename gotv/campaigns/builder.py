"""What a campaign still needs before it can go out: the builder's sections and their marks.

Plain functions, no Flask: the campaign page (web/builder.py) shows a mark beside each section
and a list of what blocks the launch; changing the status refuses a launch those block.
"""

from __future__ import annotations

from dataclasses import dataclass

from gotv.compliance import hours
from gotv.models import Campaign, CampaignStatus
from gotv.people import audit
from gotv.texting import senders

# The campaign page's sections, in the order an organizer goes through them: (id, title).
SECTIONS = (
    ("basics", "Basics"),
    ("list", "Voter list"),
    ("message", "First message"),
    ("questions", "Questions and branches"),
    ("canned", "Canned responses"),
    ("hours", "Texting hours"),
    ("sender", "Sender"),
    ("launch", "Launch"),
)
DONE, TODO, WARN, OPTIONAL = "done", "todo", "warn", "optional"
LABELS = {DONE: "done", TODO: "to do", WARN: "check", OPTIONAL: "optional"}


@dataclass(frozen=True)
class Mark:
    """A section's state (done, to do, check, optional) and why, in a few words."""

    state: str
    why: str = ""

    @property
    def label(self) -> str:
        return LABELS[self.state] + (f": {self.why}" if self.why else "")


def marks(
    campaign: Campaign,
    *,
    contacts: int,
    questions: int,
    canned: int,
    script_warnings: list[str],
    unknown_fields: list[str],
) -> dict[str, Mark]:
    """Each section's mark, by section id."""
    if not campaign.script.strip():
        script = Mark(TODO, "write it")
    elif unknown_fields:
        script = Mark(TODO, "unknown merge fields")
    elif script_warnings:
        script = Mark(WARN, "see the advice")
    else:
        script = Mark(DONE)
    launched = campaign.status is CampaignStatus.ACTIVE
    sender = campaign.sender.address if campaign.sender else "the default"
    return {
        "basics": Mark(DONE),
        "list": Mark(DONE, f"{contacts:,} contacts") if contacts else Mark(TODO, "upload one"),
        "message": script,
        "questions": Mark(DONE, f"{questions} at the top") if questions else Mark(OPTIONAL),
        "canned": Mark(DONE, f"{canned}") if canned else Mark(OPTIONAL),
        "hours": Mark(
            DONE, f"{campaign.window_start_hour}:00–{campaign.window_end_hour}:00 local time"
        ),
        "sender": Mark(TODO, "choose one") if sender_refusal(campaign) else Mark(DONE, sender),
        "launch": Mark(DONE, "texting") if launched else Mark(TODO, campaign.status.value),
    }


def launch_blockers(campaign: Campaign, unknown_fields: list[str]) -> list[str]:
    """What keeps the campaign from launching, in words (empty: it may launch)."""
    blockers = []
    if not campaign.script.strip():
        blockers.append("Write the first message.")
    elif unknown_fields:
        names = ", ".join("{" + name + "}" for name in unknown_fields)
        blockers.append(f"The first message uses merge fields the list does not have: {names}.")
    refusal = sender_refusal(campaign)
    if refusal:
        blockers.append(refusal)
    if campaign.deleted_at is not None:
        blockers.append("The campaign is deleted: restore it first.")
    return blockers


def sender_refusal(campaign: Campaign) -> str | None:
    """Why the campaign's sender cannot send for it (`senders.launch_refusal`), or None."""
    address = campaign.sender.address if campaign.sender else ""
    return senders.launch_refusal(campaign.organization_id, address)


def set_hours(
    campaign: Campaign, start_hour: int, end_hour: int, user_id: int | None, **how: object
) -> bool:
    """Set the campaign's texting hours, [start, end) in each voter's local time (audited as
    done by `user_id`, with `how` in the details; the caller commits). :return: False when
    they were already so.

    :raise ValueError: (for the organizer) for hours outside the federal limits, or ending
        before they start. The state rules still narrow them for their residents.
    """
    hours.check_campaign_window(start_hour, end_hour)
    if (campaign.window_start_hour, campaign.window_end_hour) == (start_hour, end_hour):
        return False
    audit.record(
        campaign.organization_id,
        "texting_hours_changed",
        f"campaign {campaign.id}",
        user_id,
        **how,
        old=f"{campaign.window_start_hour}:00–{campaign.window_end_hour}:00",
        new=f"{start_hour}:00–{end_hour}:00",
    )
    campaign.window_start_hour, campaign.window_end_hour = start_hour, end_hour
    return True
