"""What each Twilio error code means for us: one table, used at send time and in callbacks.

2xxxx codes come back synchronously from the Messages API; 3xxxx codes arrive later in status
callbacks. Sources: Twilio's error dictionary (https://www.twilio.com/docs/api/errors/<code>),
summarised in the research notes (compliance.md §1.4).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.StrEnum):
    OPT_OUT = "opt_out"  # the recipient is unsubscribed from this sender: record an opt-out
    BLOCK_NUMBER = "block_number"  # the number cannot receive texts: never text it again
    MARK = "mark"  # record it on the message; the number may work another day
    ALERT = "alert"  # carrier filtering or a registration problem: organizers must look
    # Over the 10DLC campaign's rate at the carriers: the account's texts wait a minute (and
    # organizers are alerted to lower its pace).
    SLOW_DOWN = "slow_down"
    # The brand's daily cap is spent: the account's texts wait for the carriers' next day
    # (midnight Pacific), and organizers are alerted.
    PAUSE_FOR_THE_DAY = "pause_for_the_day"
    RETRY = "retry"  # Twilio is busy or down: try again later, with backoff
    NONE = "none"  # nothing beyond recording the code


@dataclass(frozen=True)
class CarrierError:
    code: int
    action: Action
    reason: str


TABLE = {
    error.code: error
    for error in (
        CarrierError(21610, Action.OPT_OUT, "unsubscribed recipient (replied STOP)"),
        CarrierError(21211, Action.BLOCK_NUMBER, "invalid number"),
        CarrierError(21614, Action.BLOCK_NUMBER, "landline or not a mobile number"),
        CarrierError(21408, Action.BLOCK_NUMBER, "region not enabled (not a US number)"),
        CarrierError(30004, Action.BLOCK_NUMBER, "recipient blocks this sender"),
        CarrierError(30005, Action.BLOCK_NUMBER, "unknown or deactivated number"),
        CarrierError(30006, Action.BLOCK_NUMBER, "landline or unreachable carrier"),
        CarrierError(30003, Action.MARK, "handset unreachable (off or out of signal)"),
        CarrierError(30008, Action.MARK, "unknown delivery error"),
        CarrierError(30036, Action.MARK, "expired in Twilio's queue (validity period)"),
        CarrierError(30450, Action.MARK, "held by SMS pumping protection"),
        CarrierError(30007, Action.ALERT, "filtered by the carrier as spam"),
        CarrierError(30034, Action.ALERT, "sender not registered for A2P 10DLC"),
        CarrierError(30032, Action.ALERT, "toll-free sender not verified"),
        CarrierError(30001, Action.ALERT, "Messaging Service queue overflow"),
        CarrierError(21660, Action.ALERT, "sender not in the Twilio account it was sent through"),
        CarrierError(21701, Action.ALERT, "Messaging Service not in the account (or none such)"),
        CarrierError(21704, Action.ALERT, "Messaging Service has no numbers to send from"),
        CarrierError(30002, Action.ALERT, "Twilio account suspended"),
        CarrierError(30024, Action.ALERT, "sender not provisioned with the carrier (10DLC)"),
        CarrierError(30035, Action.ALERT, "sender still being registered for A2P 10DLC"),
        CarrierError(30022, Action.SLOW_DOWN, "over the 10DLC campaign's rate at the carrier"),
        CarrierError(30023, Action.PAUSE_FOR_THE_DAY, "the 10DLC brand's daily cap is reached"),
        CarrierError(30027, Action.PAUSE_FOR_THE_DAY, "T-Mobile's daily limit for the brand"),
        CarrierError(21611, Action.RETRY, "sender's queue is full"),
        CarrierError(20429, Action.RETRY, "too many requests"),
    )
}


def lookup(code: int | None) -> CarrierError | None:
    """The table's entry for a Twilio error code, or None for an unknown or missing code."""
    return TABLE.get(code) if code is not None else None


def action_for(code: int | None) -> Action:
    """What to do about a Twilio error code (NONE for codes the table does not list)."""
    entry = lookup(code)
    return entry.action if entry else Action.NONE
