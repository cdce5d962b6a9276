"""A small Twilio-compatible fake carrier for local demos and tests.

It speaks the slice of Twilio's 2010-04-01 REST API that gotv uses (create and fetch a
Message), sends signed status callbacks and inbound-message webhooks the way Twilio does,
and serves a voter page where a person can reply as any voter.

Contracts worth knowing:

* ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` checks HTTP Basic auth and the
  form fields of Twilio's ``CreateMessage`` operation, and answers 201 with the full
  ``api.v2010.account.message`` JSON, or 4xx/5xx with Twilio's error JSON
  ``{code, message, more_info, status}``.
* A send is final in the carrier's own records at once (``delivered`` or ``undelivered``);
  the 201 body shows the initial status (``queued``, or ``accepted`` with a Messaging Service),
  and the status callbacks ``sent`` then ``delivered``/``undelivered`` are queued as
  :class:`Webhook` objects. Tests pop them with :meth:`FakeCarrier.take_webhooks`; a running
  server POSTs them itself after :meth:`FakeCarrier.start_delivery`.
* Like Twilio, a voter reply that is exactly an opt-out keyword (STOP, ...) blocks later sends
  from that sender (or Messaging Service) to the voter with 21610, and START/YES/UNSTOP lifts it.

This module must not import ``twilio``: only ``gotv.sms`` talks to the real client.
Run it with ``python -m gotv.fakecarrier --account-sid AC... --auth-token ...``.
"""

from __future__ import annotations

from gotv.fakecarrier.carrier import FakeCarrier
from gotv.fakecarrier.protocol import (
    CREATE_MESSAGE_FIELDS,
    MESSAGE_ROUTE,
    MESSAGES_ROUTE,
    ONE_OF_FIELDS,
    REQUIRED_FIELDS,
    Webhook,
    twilio_signature,
)
from gotv.fakecarrier.web import create_carrier_app, main

__all__ = [
    "CREATE_MESSAGE_FIELDS",
    "FakeCarrier",
    "MESSAGES_ROUTE",
    "MESSAGE_ROUTE",
    "ONE_OF_FIELDS",
    "REQUIRED_FIELDS",
    "Webhook",
    "create_carrier_app",
    "main",
    "twilio_signature",
]
