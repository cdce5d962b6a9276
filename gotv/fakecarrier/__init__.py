"""A small Twilio-compatible fake carrier for local demos, tests and benchmarks.

It speaks the slice of Twilio's REST API that gotv uses, for several accounts at once: the
2010-04-01 API's Messages (create, fetch, list), Accounts (fetch, create a subaccount, list),
IncomingPhoneNumbers (list) and Media (list, fetch, and the bytes), and the Messaging API's
Services (fetch) and their PhoneNumbers (list). It sends signed status callbacks and
inbound-message webhooks the way Twilio does, and serves a voter page where a person can
reply as any voter.

Contracts worth knowing:

* :class:`CarrierServer` serves a :class:`FakeCarrier` with aiohttp on one event loop in a
  daemon thread; ``python -m gotv.fakecarrier`` runs one in the foreground. Its ``carrier``
  can be swapped between tests, and every API call is answered after its ``latency``
  seconds (``--latency``; 0 by default). The carrier acts on a call at once and only the
  answer waits, so a client that gives up early may still have sent its message, as with
  Twilio; listing Messages is how a sender finds out. Point the twilio client's
  ``api.base_url`` and ``messaging.base_url`` at the server's ``url``.
* Accounts: the constructor's ``account_sid``/``auth_token`` make the *main* account, which
  owns ``phone_number`` and, as the demo and test default, also sends from any number or
  Messaging Service that no other account owns (an unknown service sends from
  ``phone_number``). :meth:`FakeCarrier.add_account` adds strict accounts and subaccounts
  (``parent_sid``), :meth:`~FakeCarrier.add_number`, :meth:`~FakeCarrier.add_service` and
  :meth:`~FakeCarrier.add_api_key` give them numbers, Messaging Services and API keys. A
  strict account sending From a number it does not own gets 400/21660, and through a
  service it does not own 400/21701 (one without numbers: 400/21704).
* Auth: HTTP Basic with an account's SID and auth token, or an API key's SID and secret,
  acts for that account and its subaccounts; anything else gets 401/20003. A standard API
  key may not fetch or create accounts (a ``main=True`` key may), as with Twilio.
* Messages belong to an account: the list and fetch of a path's account see only its own;
  status callbacks and inbound webhooks carry the account's ``AccountSid`` and are signed with
  its auth token (a reply's account is the one owning the number texted).
* ``POST /2010-04-01/Accounts/<AccountSid>/Messages.json`` checks the form fields of Twilio's
  ``CreateMessage`` operation, and answers 201 with the full ``api.v2010.account.message``
  JSON, or 4xx/5xx with Twilio's error JSON ``{code, message, more_info, status}``.
* ``GET`` of the same path lists messages both ways, newest first, filtered by ``To``,
  ``From``, ``DateSent``, ``DateSent<`` and ``DateSent>`` (inclusive; a bare date is a whole
  GMT day), ``PageSize`` at a time, in Twilio's list shape with ``next_page_uri`` paging.
* A send is final in the carrier's own records at once (``delivered`` or ``undelivered``);
  the 201 body shows the initial status (``queued``, or ``accepted`` with a Messaging Service,
  which picks a sender from its pool, sticking to one per recipient), and the status
  callbacks ``sent`` then ``delivered``/``undelivered`` are queued as :class:`Webhook`
  objects, signed over the ``StatusCallback`` URL exactly as given (query string included)
  and POSTed to it. Tests pop them with :meth:`FakeCarrier.take_webhooks`; a running server's
  carrier POSTs them itself after :meth:`FakeCarrier.start_delivery`.
  ``status_callbacks=False`` (``--no-callbacks``) drops them, for benchmarks.
* Like Twilio, a voter reply that is exactly an opt-out keyword (STOP, ...) blocks later sends
  from that sender (or Messaging Service) to the voter with 21610, and START/YES/UNSTOP lifts it;
  with a service's Advanced Opt-Out the webhook carries ``OptOutType`` (STOP, START, HELP).
  A reply with media is an MMS whose ``MediaUrl{i}`` the carrier serves behind Basic auth.
* An account's ``concurrency`` bounds its API requests in flight (the latency counts); one
  more is answered at once with 429/20429 and counted in :attr:`FakeCarrier.throttled`
  (``GET /_carrier/stats`` serves the counts to a benchmark in another process).

This module must not import ``twilio``: only ``gotv.edge.sms`` talks to the real client.
Run it with ``python -m gotv.fakecarrier --account-sid AC... --auth-token ...``.
"""

from __future__ import annotations

from gotv.fakecarrier.accounts import Account
from gotv.fakecarrier.carrier import Admission, FakeCarrier
from gotv.fakecarrier.protocol import (
    ACCOUNT_ROUTE,
    ACCOUNTS_ROUTE,
    CREATE_ACCOUNT_FIELDS,
    CREATE_MESSAGE_FIELDS,
    INCOMING_NUMBERS_ROUTE,
    LIST_FILTERS,
    MEDIA_CONTENT_ROUTE,
    MEDIA_LIST_ROUTE,
    MEDIA_ROUTE,
    MESSAGE_ROUTE,
    MESSAGES_ROUTE,
    NUMBER_FILTERS,
    ONE_OF_FIELDS,
    PAGING_PARAMETERS,
    REQUIRED_FIELDS,
    SERVICE_NUMBERS_ROUTE,
    SERVICE_ROUTE,
    Webhook,
    twilio_signature,
)
from gotv.fakecarrier.server import CarrierServer, build_server, create_carrier_app, main

__all__ = [
    "ACCOUNTS_ROUTE",
    "ACCOUNT_ROUTE",
    "Account",
    "Admission",
    "CREATE_ACCOUNT_FIELDS",
    "CREATE_MESSAGE_FIELDS",
    "CarrierServer",
    "FakeCarrier",
    "INCOMING_NUMBERS_ROUTE",
    "LIST_FILTERS",
    "MEDIA_CONTENT_ROUTE",
    "MEDIA_LIST_ROUTE",
    "MEDIA_ROUTE",
    "MESSAGES_ROUTE",
    "MESSAGE_ROUTE",
    "NUMBER_FILTERS",
    "ONE_OF_FIELDS",
    "PAGING_PARAMETERS",
    "REQUIRED_FIELDS",
    "SERVICE_NUMBERS_ROUTE",
    "SERVICE_ROUTE",
    "Webhook",
    "build_server",
    "create_carrier_app",
    "main",
    "twilio_signature",
]
