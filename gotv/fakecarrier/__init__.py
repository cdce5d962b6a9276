"""A small Twilio-compatible fake carrier for local demos, tests and benchmarks.

It speaks the slice of Twilio's 2010-04-01 REST API that gotv uses (create, fetch and list
Messages), sends signed status callbacks and inbound-message webhooks the way Twilio does,
and serves a voter page where a person can reply as any voter.

Contracts worth knowing:

* :class:`CarrierServer` serves a :class:`FakeCarrier` with aiohttp on one event loop in a
  daemon thread; ``python -m gotv.fakecarrier`` runs one in the foreground. Its ``carrier``
  can be swapped between tests, and every API call is answered after its ``latency``
  seconds (``--latency``; 0 by default). The carrier acts on a call at once and only the
  answer waits, so a client that gives up early may still have sent its message, as with
  Twilio; listing Messages is how a sender finds out.
* ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` checks HTTP Basic auth and the
  form fields of Twilio's ``CreateMessage`` operation, and answers 201 with the full
  ``api.v2010.account.message`` JSON, or 4xx/5xx with Twilio's error JSON
  ``{code, message, more_info, status}``.
* ``GET`` of the same path lists messages both ways, newest first, filtered by ``To``,
  ``From``, ``DateSent``, ``DateSent<`` and ``DateSent>`` (inclusive; a bare date is a whole
  GMT day), ``PageSize`` at a time, in Twilio's list shape with ``next_page_uri`` paging.
* A send is final in the carrier's own records at once (``delivered`` or ``undelivered``);
  the 201 body shows the initial status (``queued``, or ``accepted`` with a Messaging Service),
  and the status callbacks ``sent`` then ``delivered``/``undelivered`` are queued as
  :class:`Webhook` objects, signed over the ``StatusCallback`` URL exactly as given (query
  string included) and POSTed to it. Tests pop them with :meth:`FakeCarrier.take_webhooks`; a
  running server's carrier POSTs them itself after :meth:`FakeCarrier.start_delivery`.
  ``status_callbacks=False`` (``--no-callbacks``) drops them, for benchmarks.
* Like Twilio, a voter reply that is exactly an opt-out keyword (STOP, ...) blocks later sends
  from that sender (or Messaging Service) to the voter with 21610, and START/YES/UNSTOP lifts it.

This module must not import ``twilio``: only ``gotv.edge.sms`` talks to the real client.
Run it with ``python -m gotv.fakecarrier --account-sid AC... --auth-token ...``.
"""

from __future__ import annotations

from gotv.fakecarrier.carrier import FakeCarrier
from gotv.fakecarrier.protocol import (
    CREATE_MESSAGE_FIELDS,
    LIST_FILTERS,
    MESSAGE_ROUTE,
    MESSAGES_ROUTE,
    ONE_OF_FIELDS,
    REQUIRED_FIELDS,
    Webhook,
    twilio_signature,
)
from gotv.fakecarrier.server import CarrierServer, build_server, create_carrier_app, main

__all__ = [
    "CREATE_MESSAGE_FIELDS",
    "CarrierServer",
    "FakeCarrier",
    "LIST_FILTERS",
    "MESSAGES_ROUTE",
    "MESSAGE_ROUTE",
    "ONE_OF_FIELDS",
    "REQUIRED_FIELDS",
    "Webhook",
    "build_server",
    "create_carrier_app",
    "main",
    "twilio_signature",
]
