"""The fake carrier: Twilio's contract, signatures, callbacks, errors and the voter page."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from multidict import MultiDict
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from gotv import fakecarrier
from gotv.fakecarrier import (
    ACCOUNT_ROUTE,
    ACCOUNTS_ROUTE,
    CREATE_ACCOUNT_FIELDS,
    CREATE_MESSAGE_FIELDS,
    INCOMING_NUMBERS_ROUTE,
    LIST_FILTERS,
    MEDIA_CONTENT_ROUTE,
    MEDIA_LIST_ROUTE,
    MEDIA_ROUTE,
    NUMBER_FILTERS,
    ONE_OF_FIELDS,
    PAGING_PARAMETERS,
    REQUIRED_FIELDS,
    SERVICE_NUMBERS_ROUTE,
    SERVICE_ROUTE,
    CarrierServer,
    FakeCarrier,
    Webhook,
    build_server,
    create_carrier_app,
    twilio_signature,
)
from tests import twilio_contract
from tests.twilio_contract import (
    CONTRACT_PATH,
    create_operation,
    message_schema,
    request_schema,
    resolve,
)

SID = "AC" + "1234567890abcdef" * 2
TOKEN = "f" * 32
SERVICE = "MG" + "0123456789abcdef" * 2
INBOUND = "https://gotv.example/twilio/inbound"
CALLBACK = "https://gotv.example/twilio/status?campaign=7"
OTHER_VOTER = "+15551230002"
VOTER = "+15551230001"
MESSAGES_URL = f"/2010-04-01/Accounts/{SID}/Messages.json"


def pascal(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


@pytest.fixture(autouse=True)
def database() -> Iterator[None]:
    """Override conftest's per-test database: the fake carrier needs no database or Redis."""
    yield


@pytest.fixture
def carrier() -> FakeCarrier:
    return FakeCarrier(SID, TOKEN, inbound_url=INBOUND)


class Api:
    """Real HTTP requests to the served carrier; paths are relative to its URL.

    Redirects are not followed, so a test sees the carrier's own answer.
    """

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base_url = base_url
        self.session = session

    def get(self, path: str, **options: Any) -> requests.Response:
        return self.session.get(self.base_url + path, allow_redirects=False, **options)

    def post(self, path: str, **options: Any) -> requests.Response:
        return self.session.post(self.base_url + path, allow_redirects=False, **options)

    def request(self, method: str, path: str, **options: Any) -> requests.Response:
        return self.session.request(method, self.base_url + path, **options)


@pytest.fixture
def client(carrier: FakeCarrier, carrier_server: CarrierServer) -> Iterator[Api]:
    """The test's carrier behind conftest's session-wide server, over real HTTP."""
    carrier_server.carrier = carrier
    with requests.Session() as session:
        yield Api(carrier_server.url, session)


def send(client: Api, **fields: str) -> requests.Response:
    form = {"To": VOTER, "From": "+15005550006", "Body": "Hi, it's Sam. Will you vote?"}
    form.update(fields)
    form = {name: value for name, value in form.items() if value is not None and value != "-"}
    return client.post(MESSAGES_URL, data=form, auth=(SID, TOKEN))


def json_of(response: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    return body


def listed(client: Api, **query: str | int) -> dict[str, Any]:
    """One page of the message list, asserting it was a 200."""
    response = client.get(MESSAGES_URL, params=query, auth=(SID, TOKEN))
    assert response.status_code == 200, response.text
    return json_of(response)


def is_twilio_error(body: dict[str, Any], code: int, status: int) -> bool:
    return (
        body["code"] == code
        and body["status"] == status
        and bool(body["message"])
        and body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    )


def assert_signed(webhook: Webhook) -> None:
    signature = webhook.headers["X-Twilio-Signature"]
    assert RequestValidator(TOKEN).validate(webhook.url, webhook.params, signature)


# -- the contract ------------------------------------------------------------------------------


def test_the_fake_serves_the_contracts_create_list_and_fetch_paths(
    contract: dict[str, Any],
) -> None:
    app = create_carrier_app(CarrierServer(FakeCarrier(SID, TOKEN)))
    routes: dict[str, set[str]] = {}
    for route in app.router.routes():
        if route.resource is not None:
            routes.setdefault(route.resource.canonical, set()).add(route.method)
    assert {"post", "get"} <= set(contract["paths"][CONTRACT_PATH])
    assert {"POST", "GET"} <= routes[CONTRACT_PATH]
    fetch_path = "/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json"
    assert "get" in contract["paths"][fetch_path]
    assert "GET" in routes[fetch_path]


def test_the_list_takes_the_contracts_filters_and_answers_its_list_shape(
    client: Api, contract: dict[str, Any]
) -> None:
    operation = contract["paths"][CONTRACT_PATH]["get"]
    parameters = {p["name"] for p in operation["parameters"] if p["in"] == "query"}
    assert {*LIST_FILTERS, "PageSize"} <= parameters
    response = operation["responses"]["200"]["content"]["application/json"]
    shape = resolve(contract, response["schema"])["properties"]
    send(client)
    page = listed(client, To=VOTER)
    assert set(page) == set(shape)
    (message,) = page["messages"]
    assert set(message) == set(message_schema(contract)["properties"])


def test_every_field_the_fake_knows_is_in_the_contracts_create_message_request(
    contract: dict[str, Any],
) -> None:
    properties = set(request_schema(contract)["properties"])
    named = set(CREATE_MESSAGE_FIELDS) | set(REQUIRED_FIELDS)
    named |= {name for group in ONE_OF_FIELDS for name in group}
    assert named <= properties, named - properties
    assert named <= set(CREATE_MESSAGE_FIELDS)


def test_the_fake_requires_what_the_contract_requires(contract: dict[str, Any]) -> None:
    assert list(REQUIRED_FIELDS) == request_schema(contract)["required"]
    conditional = create_operation(contract)["x-twilio"]["conditional"]
    assert [tuple(pascal(name) for name in group) for group in conditional] == list(ONE_OF_FIELDS)


def test_it_rejects_a_send_missing_a_required_field_or_a_whole_conditional_group(
    client: Api,
) -> None:
    for name in REQUIRED_FIELDS:
        assert send(client, **{name: "-"}).status_code == 400
    assert send(client, From="-").status_code == 400
    assert send(client, Body="-").status_code == 400


def test_it_accepts_each_alternative_of_a_conditional_group(client: Api) -> None:
    assert send(client, From="-", MessagingServiceSid=SERVICE).status_code == 201
    media = "https://gotv.example/flyer.png"
    assert send(client, Body="-", MediaUrl=media).status_code == 201
    assert send(client, Body="-", ContentSid="HX" + "a" * 32).status_code == 201


def test_a_created_message_has_exactly_the_contracts_message_properties(
    client: Api, contract: dict[str, Any]
) -> None:
    schema = message_schema(contract)
    statuses = resolve(contract, schema["properties"]["status"])["enum"]
    directions = resolve(contract, schema["properties"]["direction"])["enum"]
    for response in (send(client), send(client, From="-", MessagingServiceSid=SERVICE)):
        assert response.status_code == 201
        message = json_of(response)
        assert set(message) == set(schema["properties"])
        assert message["status"] in statuses
        assert message["direction"] in directions
        for name in ("sid", "account_sid"):
            assert re.match(schema["properties"][name]["pattern"], message[name])
        parsedate_to_datetime(message["date_created"])
        parsedate_to_datetime(message["date_updated"])
        fetched = client.get(message["uri"], auth=(SID, TOKEN))
        assert set(json_of(fetched)) == set(schema["properties"])
        assert json_of(fetched)["status"] in statuses


def test_every_status_the_fake_reports_is_in_the_contracts_status_enum(
    carrier: FakeCarrier, client: Api, contract: dict[str, Any]
) -> None:
    statuses = resolve(contract, message_schema(contract)["properties"]["status"])["enum"]
    carrier.fail_delivery_to("+15551230002")
    send(client, StatusCallback=CALLBACK)
    send(client, To="+15551230002", StatusCallback=CALLBACK)
    carrier.reply(VOTER, "STOP")
    reported = {
        w.params.get("MessageStatus") or w.params["SmsStatus"] for w in carrier.take_webhooks()
    }
    reported |= {m["status"] for thread in carrier.conversations().values() for m in thread}
    assert reported == {"sent", "delivered", "undelivered", "received"}
    assert reported <= set(statuses)


# -- the signature -----------------------------------------------------------------------------


def test_the_signature_matches_twilios_own_test_vector() -> None:
    # As in twilio-python's and twilio-php's RequestValidator tests.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature("12345", url, params) == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert RequestValidator("12345").compute_signature(url, params) == twilio_signature(
        "12345", url, params
    )


def test_every_webhook_validates_with_twilios_request_validator(
    carrier: FakeCarrier, client: Api
) -> None:
    carrier.fail_delivery_to("+15551230002")
    send(client, StatusCallback=CALLBACK)
    send(client, To="+15551230002", MessagingServiceSid=SERVICE, From="-", StatusCallback=CALLBACK)
    carrier.reply(VOTER, "Yes, I'll vote <3 & so will mom")
    webhooks = carrier.take_webhooks()
    assert len(webhooks) == 5
    for webhook in webhooks:
        assert_signed(webhook)
    assert len({w.headers["I-Twilio-Idempotency-Token"] for w in webhooks}) == 5


def test_a_callback_url_with_a_query_string_is_signed_over_the_whole_url(
    carrier: FakeCarrier, client: Api
) -> None:
    url = "https://app.example/twilio/status?message=42"
    send(client, StatusCallback=url)
    webhooks = carrier.take_webhooks()
    assert [w.url for w in webhooks] == [url, url]
    for webhook in webhooks:
        signature = webhook.headers["X-Twilio-Signature"]
        assert RequestValidator(TOKEN).validate(url, webhook.params, signature)
        # Signed over the path alone, the signature would not validate.
        without_query = url.split("?")[0]
        assert not RequestValidator(TOKEN).validate(without_query, webhook.params, signature)


# -- status callbacks --------------------------------------------------------------------------


def test_a_send_with_a_status_callback_queues_sent_then_delivered(
    carrier: FakeCarrier, client: Api
) -> None:
    message = json_of(send(client, StatusCallback=CALLBACK))
    assert message["status"] == "queued"
    sent, delivered = carrier.take_webhooks()
    assert sent.url == delivered.url == CALLBACK
    assert sent.params == {
        "MessageSid": message["sid"],
        "SmsSid": message["sid"],
        "MessageStatus": "sent",
        "SmsStatus": "sent",
        "AccountSid": SID,
        "From": "+15005550006",
        "To": VOTER,
        "ApiVersion": "2010-04-01",
    }
    assert delivered.params["MessageStatus"] == delivered.params["SmsStatus"] == "delivered"
    assert "ErrorCode" not in delivered.params
    assert re.fullmatch(r"\d{10}", delivered.params["RawDlrDoneDate"])


def test_a_send_without_a_status_callback_queues_no_webhooks(
    carrier: FakeCarrier, client: Api
) -> None:
    assert send(client).status_code == 201
    assert carrier.pending_webhooks() == []


def test_a_carrier_without_status_callbacks_queues_none_but_still_sends_replies(
    client: Api, carrier_server: CarrierServer
) -> None:
    quiet = FakeCarrier(SID, TOKEN, inbound_url=INBOUND, status_callbacks=False)
    carrier_server.carrier = quiet
    message = json_of(send(client, StatusCallback=CALLBACK))
    assert quiet.pending_webhooks() == []
    fetched = json_of(client.get(message["uri"], auth=(SID, TOKEN)))
    assert fetched["status"] == "delivered"
    assert quiet.reply(VOTER, "hi").url == INBOUND
    assert quiet.pending_webhooks() == quiet.take_webhooks() != []


def test_a_failed_delivery_reports_sent_then_undelivered_with_its_error_code(
    carrier: FakeCarrier, client: Api
) -> None:
    carrier.fail_delivery_to(VOTER, error_code=30006)
    message = json_of(send(client, StatusCallback=CALLBACK))
    assert message["status"] == "queued"
    sent, undelivered = carrier.take_webhooks()
    assert sent.params["MessageStatus"] == "sent" and "ErrorCode" not in sent.params
    assert undelivered.params["MessageStatus"] == "undelivered"
    assert undelivered.params["ErrorCode"] == "30006"
    fetched = json_of(client.get(message["uri"], auth=(SID, TOKEN)))
    assert fetched["status"] == "undelivered"
    assert fetched["error_code"] == 30006
    assert fetched["error_message"]


def test_a_messaging_service_send_is_accepted_and_its_callbacks_name_the_service(
    carrier: FakeCarrier, client: Api
) -> None:
    message = json_of(send(client, From="-", MessagingServiceSid=SERVICE, StatusCallback=CALLBACK))
    assert message["status"] == "accepted"
    assert message["messaging_service_sid"] == SERVICE
    # Twilio has not picked a sender yet when it answers a Messaging Service send.
    assert message["from"] is None and message["num_segments"] == "0"
    for webhook in carrier.take_webhooks():
        assert webhook.params["MessagingServiceSid"] == SERVICE
        assert webhook.params["From"] == carrier.phone_number
    fetched = json_of(client.get(message["uri"], auth=(SID, TOKEN)))
    assert fetched["from"] == carrier.phone_number and fetched["status"] == "delivered"


def test_the_messages_list_keeps_every_accepted_send_in_order(
    carrier: FakeCarrier, client: Api
) -> None:
    first = json_of(send(client, Body="one"))
    send(client, To="+15005550004")
    second = json_of(send(client, Body="two"))
    assert [m["sid"] for m in carrier.messages] == [first["sid"], second["sid"]]
    assert [r.get("To") for r in carrier.requests] == [VOTER, "+15005550004", VOTER]


# -- synchronous errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "code"),
    [("+15005550001", 21211), ("+15005550004", 21610), ("+15005550009", 21614)],
)
def test_it_fails_sends_to_twilios_magic_numbers(
    client: Api, carrier: FakeCarrier, number: str, code: int
) -> None:
    response = send(client, To=number, StatusCallback=CALLBACK)
    assert response.status_code == 400
    assert is_twilio_error(json_of(response), code, 400)
    assert carrier.messages == [] and carrier.pending_webhooks() == []


def test_it_fails_sends_to_a_number_it_was_told_to_fail(carrier: FakeCarrier, client: Api) -> None:
    carrier.fail_sends_to(VOTER, 21408, status=400, message="Region not enabled")
    response = send(client)
    assert response.status_code == 400
    assert is_twilio_error(json_of(response), 21408, 400)
    assert json_of(response)["message"] == "Region not enabled"
    assert send(client, To="+15551230002").status_code == 201


def test_an_outage_fails_every_send_until_it_recovers(carrier: FakeCarrier, client: Api) -> None:
    carrier.fail_all_sends()
    response = send(client)
    assert response.status_code == 503
    assert is_twilio_error(json_of(response), 20503, 503)
    carrier.fail_all_sends(status=500)
    assert is_twilio_error(json_of(send(client)), 20500, 500)
    carrier.recover()
    assert send(client).status_code == 201
    assert len(carrier.requests) == 3 and len(carrier.messages) == 1


# -- authentication ----------------------------------------------------------------------------


def test_it_rejects_a_send_without_basic_auth(client: Api) -> None:
    response = client.post(MESSAGES_URL, data={"To": VOTER, "From": "+15005550006", "Body": "x"})
    assert response.status_code == 401
    assert is_twilio_error(json_of(response), 20003, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_it_rejects_a_send_with_the_wrong_auth_token(client: Api) -> None:
    response = client.post(MESSAGES_URL, data={"To": VOTER}, auth=(SID, "wrong"))
    assert response.status_code == 401
    assert is_twilio_error(json_of(response), 20003, 401)


def test_it_rejects_a_send_to_another_accounts_path(client: Api) -> None:
    other = "AC" + "0" * 32
    response = client.post(
        f"/2010-04-01/Accounts/{other}/Messages.json",
        data={"To": VOTER, "From": "+15005550006", "Body": "x"},
        auth=(SID, TOKEN),
    )
    assert response.status_code == 401


def test_it_rejects_a_fetch_without_basic_auth(client: Api) -> None:
    message = json_of(send(client))
    assert client.get(message["uri"]).status_code == 401
    assert client.get(message["uri"], auth=(SID, TOKEN)).status_code == 200


def test_it_answers_an_unknown_message_with_twilios_404(client: Api) -> None:
    response = client.get(
        f"/2010-04-01/Accounts/{SID}/Messages/SM{'0' * 32}.json", auth=(SID, TOKEN)
    )
    assert response.status_code == 404
    assert is_twilio_error(json_of(response), 20404, 404)


def test_a_wrong_method_or_unknown_api_path_gets_twilios_error_json(client: Api) -> None:
    wrong = client.request("PUT", MESSAGES_URL, auth=(SID, TOKEN))
    assert wrong.status_code == 405
    assert is_twilio_error(json_of(wrong), 20004, 405)
    assert set(wrong.headers["Allow"].split(", ")) == {"GET", "POST"}
    unknown = client.get(f"/2010-04-01/Accounts/{SID}/Calls.json", auth=(SID, TOKEN))
    assert unknown.status_code == 404
    assert is_twilio_error(json_of(unknown), 20404, 404)


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"To": "-"}, 21604),
        ({"To": "5551230001"}, 21211),
        ({"From": "-"}, 21603),
        ({"MessagingServiceSid": SERVICE}, 21603),
        ({"From": "sam"}, 21212),
        ({"From": "-", "MessagingServiceSid": "MG123"}, 21701),
        ({"Body": "-"}, 21602),
        ({"Body": ""}, 21602),
        ({"Body": "x" * 1601}, 21617),
        ({"ValidityPeriod": "0"}, 21624),
        ({"ValidityPeriod": "36001"}, 21624),
        ({"StatusCallback": "not a url"}, 21609),
    ],
)
def test_it_rejects_an_invalid_send_with_twilios_error(
    client: Api, carrier: FakeCarrier, fields: dict[str, str], code: int
) -> None:
    response = send(client, **fields)
    assert response.status_code == 400
    assert is_twilio_error(json_of(response), code, 400)
    assert carrier.messages == []


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a" * 160, "1"),
        ("a" * 161, "2"),
        ("a" * 306, "2"),
        ("a" * 307, "3"),
        ("{" * 80, "1"),  # extended GSM characters cost two septets
        ("{" * 81, "2"),
        ("é" * 160, "1"),  # é is in the GSM-7 alphabet
        ("ó" * 70, "1"),  # ó is not, so the message is UCS-2
        ("ó" * 71, "2"),
        ("👍" * 35, "1"),  # an emoji is two UCS-2 units
        ("a" * 69 + "👍", "2"),
    ],
)
def test_it_counts_segments_like_twilio(client: Api, body: str, segments: str) -> None:
    assert json_of(send(client, Body=body))["num_segments"] == segments


def test_smart_encoding_replaces_curly_quotes_so_the_message_stays_gsm7(
    client: Api,
) -> None:
    body = "It’s “election day” — polls close at 8…" + "x" * 100
    plain = json_of(send(client, Body=body))
    smart = json_of(send(client, Body=body, SmartEncoded="true"))
    assert plain["num_segments"] == "3"
    assert smart["num_segments"] == "1"
    assert smart["body"].startswith('It\'s "election day" - polls close at 8...')


def test_a_media_message_gets_an_mm_sid_and_counts_its_media(client: Api) -> None:
    message = json_of(send(client, MediaUrl="https://gotv.example/flyer.png"))
    assert message["sid"].startswith("MM") and message["num_media"] == "1"


# -- voter replies -----------------------------------------------------------------------------


def test_a_reply_queues_a_signed_inbound_webhook_with_twilios_params(
    carrier: FakeCarrier,
) -> None:
    webhook = carrier.reply(VOTER, "Already voted!")
    assert webhook.url == INBOUND
    params = webhook.params
    assert re.fullmatch(r"SM[0-9a-f]{32}", params["MessageSid"])
    assert params["SmsMessageSid"] == params["SmsSid"] == params["MessageSid"]
    expected = {
        "AccountSid": SID,
        "From": VOTER,
        "To": carrier.phone_number,
        "Body": "Already voted!",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    assert expected.items() <= params.items()
    assert "MessagingServiceSid" not in params
    assert_signed(webhook)
    assert carrier.take_webhooks() == [webhook]


def test_a_reply_goes_to_the_number_that_last_texted_the_voter(
    carrier: FakeCarrier, client: Api
) -> None:
    send(client, From="+15550009999")
    assert carrier.reply(VOTER, "who is this?").params["To"] == "+15550009999"
    assert carrier.reply(VOTER, "hello", to="+15550001111").params["To"] == "+15550001111"


def test_a_reply_in_a_messaging_service_conversation_names_the_service(
    carrier: FakeCarrier, client: Api
) -> None:
    send(client, From="-", MessagingServiceSid=SERVICE)
    params = carrier.reply(VOTER, "yes").params
    assert params["MessagingServiceSid"] == SERVICE
    assert params["To"] == carrier.phone_number


def test_a_reply_without_an_inbound_url_is_refused() -> None:
    with pytest.raises(ValueError, match="inbound_url"):
        FakeCarrier(SID, TOKEN).reply(VOTER, "hi")


def test_a_stop_reply_blocks_later_sends_until_the_voter_texts_start(
    carrier: FakeCarrier, client: Api
) -> None:
    send(client)
    carrier.reply(VOTER, "stop please")
    assert send(client).status_code == 201
    carrier.reply(VOTER, " Stop ")
    blocked = send(client)
    assert blocked.status_code == 400
    assert json_of(blocked)["code"] == 21610
    carrier.reply(VOTER, "START")
    assert send(client).status_code == 201
    directions = [m["direction"] for m in carrier.conversations()[VOTER]]
    assert directions.count("outbound-reply") == 2


def test_take_webhooks_pops_every_pending_webhook_in_order(
    carrier: FakeCarrier, client: Api
) -> None:
    send(client, StatusCallback=CALLBACK)
    carrier.reply(VOTER, "ok")
    peeked = carrier.pending_webhooks()
    assert [w.params.get("MessageStatus", "inbound") for w in peeked] == [
        "sent",
        "delivered",
        "inbound",
    ]
    assert carrier.pending_webhooks() == peeked
    assert carrier.take_webhooks() == peeked
    assert carrier.take_webhooks() == []


def test_conversations_hold_messages_both_ways_per_voter(carrier: FakeCarrier, client: Api) -> None:
    send(client, Body="Will you vote?")
    send(client, To="+15551230002", Body="Hello?")
    carrier.reply(VOTER, "Yes")
    conversations = carrier.conversations()
    assert list(conversations) == [VOTER, "+15551230002"]
    assert [(m["direction"], m["body"]) for m in conversations[VOTER]] == [
        ("outbound-api", "Will you vote?"),
        ("inbound", "Yes"),
    ]


# -- the voter page and control endpoint -------------------------------------------------------


def test_the_voter_page_says_it_is_fake_and_escapes_message_bodies(
    carrier: FakeCarrier, client: Api
) -> None:
    send(client, Body="<b>Vote</b> & bring a friend")
    carrier.reply(VOTER, "<script>alert(1)</script>")
    page = client.get("/").text
    assert "fake carrier" in page.lower()
    assert "<script>alert(1)</script>" not in page and "<b>Vote</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Vote&lt;/b&gt; &amp; bring a friend" in page
    assert f'name="from" value="{VOTER}"' in page


def test_replying_on_the_voter_page_queues_a_webhook_and_redirects_home(
    carrier: FakeCarrier, client: Api
) -> None:
    response = client.post("/reply", data={"from": VOTER, "body": "On my way"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/")
    (webhook,) = carrier.take_webhooks()
    assert webhook.params["Body"] == "On my way"
    assert client.post("/reply", data={"from": VOTER}).status_code == 400


def test_the_control_endpoint_replies_as_a_voter_from_a_form_or_json(
    carrier: FakeCarrier, client: Api, carrier_server: CarrierServer
) -> None:
    by_form = client.post("/_carrier/reply", data={"from": VOTER, "body": "hi"})
    by_json = client.post("/_carrier/reply", json={"from": VOTER, "body": "yo", "to": "+15550001"})
    assert by_form.status_code == by_json.status_code == 201
    assert json_of(by_json)["params"]["To"] == "+15550001"
    assert [w.params["Body"] for w in carrier.take_webhooks()] == ["hi", "yo"]
    assert client.post("/_carrier/reply", json={"from": VOTER}).status_code == 400
    carrier_server.carrier = FakeCarrier(SID, TOKEN)  # one without an inbound URL
    assert client.post("/_carrier/reply", data={"from": VOTER, "body": "x"}).status_code == 409


# -- listing messages --------------------------------------------------------------------------


def test_the_list_shows_messages_both_ways_newest_first_filtered_by_to_and_from(
    carrier: FakeCarrier, client: Api
) -> None:
    first = json_of(send(client, Body="one"))
    send(client, To=OTHER_VOTER, Body="elsewhere")
    second = json_of(send(client, Body="two", From="+15550009999"))
    carrier.reply(VOTER, "yes")
    to_voter = listed(client, To=VOTER)["messages"]
    assert [m["sid"] for m in to_voter] == [second["sid"], first["sid"]]
    assert all(m["status"] == "delivered" for m in to_voter)
    from_voter = listed(client, From=VOTER)["messages"]
    assert [(m["direction"], m["body"]) for m in from_voter] == [("inbound", "yes")]
    assert [m["body"] for m in listed(client, To=VOTER, From="+15550009999")["messages"]] == ["two"]
    assert len(listed(client)["messages"]) == 4


def test_the_list_filters_by_date_sent_inclusively(carrier: FakeCarrier, client: Api) -> None:
    send(client)
    now = datetime.now(UTC).replace(microsecond=0)
    today, second = now.date(), now.strftime("%Y-%m-%dT%H:%M:%SZ")
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)

    def count(**query: str) -> int:
        return len(listed(client, To=VOTER, **query)["messages"])

    assert count(DateSent=today.isoformat()) == 1
    assert count(DateSent=yesterday.isoformat()) == 0
    assert count(**{"DateSent>": yesterday.isoformat(), "DateSent<": today.isoformat()}) == 1
    assert count(**{"DateSent>": tomorrow.isoformat()}) == 0
    assert count(**{"DateSent<": yesterday.isoformat()}) == 0
    # A date-time bound counts to the second, so a message sent in that second is kept
    # (unless the clock ticked over between the send and reading it; allow one second).
    earlier = (now - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert count(**{"DateSent>": earlier}) == 1
    assert count(**{"DateSent<": second}) == 1
    later = (now + timedelta(minutes=1)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    assert count(**{"DateSent>": later}) == 0


@pytest.mark.parametrize(
    "query",
    [{"PageSize": "0"}, {"PageSize": "1001"}, {"PageSize": "x"}, {"DateSent>": "soon"}],
)
def test_the_list_rejects_a_bad_parameter(client: Api, query: dict[str, str]) -> None:
    response = client.get(MESSAGES_URL, params=query, auth=(SID, TOKEN))
    assert response.status_code == 400
    assert is_twilio_error(json_of(response), 20001, 400)


def test_the_list_needs_basic_auth(client: Api) -> None:
    assert client.get(MESSAGES_URL).status_code == 401


def test_the_list_pages_through_next_page_uri(client: Api) -> None:
    sids = [json_of(send(client, Body=str(n)))["sid"] for n in range(5)]
    send(client, To=OTHER_VOTER)
    pages = [listed(client, To=VOTER, PageSize=2)]
    while pages[-1]["next_page_uri"] is not None:
        response = client.get(pages[-1]["next_page_uri"], auth=(SID, TOKEN))
        pages.append(json_of(response))
    assert [len(p["messages"]) for p in pages] == [2, 2, 1]
    assert [m["sid"] for p in pages for m in p["messages"]] == sids[::-1]
    assert [(p["page"], p["start"], p["end"]) for p in pages] == [(0, 0, 1), (1, 2, 3), (2, 4, 4)]
    assert pages[0]["previous_page_uri"] is None
    assert pages[1]["previous_page_uri"] == pages[0]["uri"] == pages[0]["first_page_uri"]
    assert pages[0]["uri"].endswith("?To=%2B15551230001&PageSize=2&Page=0")


def test_a_long_run_lists_one_voters_messages_without_walking_everyone_elses() -> None:
    carrier = FakeCarrier(SID, TOKEN)
    form = {"From": "+15005550006", "Body": "Will you vote?"}
    for n in range(20_000):
        carrier.handle_create(SID, (SID, TOKEN), MultiDict(form, To=f"+1555{n:07d}"))
    started = time.perf_counter()
    for n in range(0, 20_000, 20):
        status, page = carrier.handle_list(SID, (SID, TOKEN), MultiDict(To=f"+1555{n:07d}"))
        assert status == 200 and len(page["messages"]) == 1
    # A thousand lists that each scanned 20,000 messages would take seconds.
    assert time.perf_counter() - started < 1.0


# -- the server: latency and lifecycle ---------------------------------------------------------


@pytest.fixture
def slow_server() -> Iterator[CarrierServer]:
    with CarrierServer(FakeCarrier(SID, TOKEN), latency=0.3) as server:
        yield server


def test_latency_delays_each_api_answer_without_serializing_them(
    slow_server: CarrierServer,
) -> None:
    def create(n: int) -> int:
        form = {"To": f"+1555123{n:04d}", "From": "+15005550006", "Body": "hi"}
        url = slow_server.url + MESSAGES_URL
        return requests.post(url, data=form, auth=(SID, TOKEN), timeout=10).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(create, range(20)))
    elapsed = time.monotonic() - started
    assert statuses == [201] * 20
    assert 0.3 <= elapsed < 0.3 * 4  # twenty in flight at once, not one after another
    page_started = time.monotonic()
    assert requests.get(slow_server.url + "/", timeout=10).status_code == 200
    assert time.monotonic() - page_started < 0.3  # the voter page is not an API call


def test_a_stopped_server_refuses_connections() -> None:
    server = CarrierServer(FakeCarrier(SID, TOKEN)).start()
    assert requests.get(server.url + "/", timeout=5).status_code == 200
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/", timeout=5)


# -- automatic delivery ------------------------------------------------------------------------


class Receiver:
    """A tiny local webhook receiver answering with a scripted list of statuses."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], dict[str, str]]] = []
        self.paths: list[str] = []
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                receiver.received.append((form, dict(self.headers)))
                receiver.paths.append(self.path)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.got.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output clean

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/twilio/inbound"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver([])
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    receiver.thread.join(timeout=5)


def test_auto_delivery_retries_after_a_500_and_stops_after_a_200(receiver: Receiver) -> None:
    receiver.statuses.extend([500, 200])
    carrier = FakeCarrier(SID, TOKEN, inbound_url=receiver.url, delivery_delay=0.01)
    carrier.start_delivery()
    try:
        webhook = carrier.reply(VOTER, "I voted")
        receiver.wait_for(2)
        time.sleep(0.3)  # long enough for a wrongful third attempt (backoff is 0.05 s)
    finally:
        carrier.stop_delivery()
    assert len(receiver.received) == 2
    for form, headers in receiver.received:
        assert form == webhook.params
        assert headers["X-Twilio-Signature"] == webhook.headers["X-Twilio-Signature"]
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert [entry["status"] for entry in carrier.delivery_log] == [500, 200]
    assert carrier.pending_webhooks() == []


def test_auto_delivery_posts_a_status_callback_to_its_url_with_the_query_string(
    receiver: Receiver, client: Api, carrier_server: CarrierServer
) -> None:
    callback = receiver.url.replace("/twilio/inbound", "/twilio/status?message=42")
    carrier = FakeCarrier(SID, TOKEN, delivery_delay=0.01)
    carrier_server.carrier = carrier
    carrier.start_delivery()
    try:
        send(client, StatusCallback=callback)
        receiver.wait_for(2)
    finally:
        carrier.stop_delivery()
    assert receiver.paths == ["/twilio/status?message=42"] * 2
    for form, headers in receiver.received:
        assert RequestValidator(TOKEN).validate(callback, form, headers["X-Twilio-Signature"])


def test_auto_delivery_never_retries_a_webhook_that_got_a_4xx(receiver: Receiver) -> None:
    receiver.statuses.append(403)
    carrier = FakeCarrier(SID, TOKEN, inbound_url=receiver.url, delivery_delay=0.01)
    carrier.start_delivery()
    try:
        carrier.reply(VOTER, "hi")
        receiver.wait_for(1)
        time.sleep(0.3)
    finally:
        carrier.stop_delivery()
    assert len(receiver.received) == 1
    assert carrier.pending_webhooks() == []


def test_auto_delivery_gives_up_on_an_unreachable_app_after_a_few_attempts() -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        dead_url = f"http://127.0.0.1:{closed.server_port}/inbound"
    carrier = FakeCarrier(SID, TOKEN, inbound_url=dead_url, auto_deliver=True, delivery_delay=0.01)
    try:
        carrier.reply(VOTER, "hi")
        deadline = time.monotonic() + 5
        while len(carrier.delivery_log) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.5)
    finally:
        carrier.stop_delivery()
    assert [entry["status"] for entry in carrier.delivery_log] == [None] * 4
    assert carrier.pending_webhooks() == []


def test_several_delivery_threads_post_webhooks_at_once() -> None:
    together = threading.Barrier(2, timeout=5)  # both POSTs must be in the receiver at once

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            try:
                together.wait()
                status = 200
            except threading.BrokenBarrierError:
                status = 400  # one at a time: never retried, and the test sees it
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}/twilio/inbound"
        carrier = FakeCarrier(SID, TOKEN, inbound_url=url, delivery_delay=0, delivery_threads=2)
        carrier.reply(VOTER, "one")
        carrier.reply(OTHER_VOTER, "two")
        carrier.start_delivery()
        try:
            deadline = time.monotonic() + 10
            while len(carrier.delivery_log) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            carrier.stop_delivery()
            server.shutdown()
    assert [entry["status"] for entry in carrier.delivery_log] == [200, 200]
    assert carrier.stats()["webhooks"] == {"pending": 0, "attempts": 2, "answered_2xx": 2}


def test_the_stats_endpoint_counts_429s_messages_and_webhooks(
    carrier: FakeCarrier, client: Api
) -> None:
    carrier.main.concurrency = 1
    admitted = carrier.admit(SID, (SID, TOKEN))  # one request still being answered
    try:
        refused = send(client, StatusCallback="https://gotv.test/twilio/status")
    finally:
        carrier.release(admitted)
    accepted = send(client, StatusCallback="https://gotv.test/twilio/status")
    assert (refused.status_code, accepted.status_code) == (429, 201)
    stats = json_of(client.get("/_carrier/stats"))
    assert stats["throttled"] == 1 and stats["messages"] == 1
    assert stats["accounts"][SID] == {"concurrency": 1, "in_flight": 0, "throttled": 1}
    assert stats["webhooks"] == {"pending": 2, "attempts": 0, "answered_2xx": 0}


def test_the_command_line_sets_how_many_webhooks_go_out_at_once() -> None:
    credentials = ["--account-sid", SID, "--auth-token", TOKEN]
    assert build_server(credentials).carrier.delivery_threads == 1
    assert build_server([*credentials, "--delivery-threads", "8"]).carrier.delivery_threads == 8
    with pytest.raises(SystemExit):
        build_server([*credentials, "--delivery-threads", "0"])


# -- the real Twilio client against the fake ---------------------------------------------------


@pytest.fixture
def served(carrier_server: CarrierServer) -> Iterator[tuple[FakeCarrier, Client]]:
    carrier = FakeCarrier(SID, TOKEN, inbound_url=INBOUND)
    carrier_server.carrier = carrier
    twilio = Client(SID, TOKEN)
    twilio.api.base_url = carrier_server.url
    try:
        yield carrier, twilio
    finally:
        session = getattr(twilio.http_client, "session", None)
        if session is not None:
            session.close()


def test_the_real_twilio_client_creates_and_fetches_a_message(
    served: tuple[FakeCarrier, Client],
) -> None:
    carrier, twilio = served
    message = twilio.messages.create(
        to=VOTER,
        messaging_service_sid=SERVICE,
        body="Polls are open until 8pm.",
        status_callback=CALLBACK,
        validity_period=14400,
    )
    assert message.sid is not None and message.sid.startswith("SM")
    assert message.status == "accepted"
    assert carrier.requests[0] == {
        "To": VOTER,
        "MessagingServiceSid": SERVICE,
        "Body": "Polls are open until 8pm.",
        "StatusCallback": CALLBACK,
        "ValidityPeriod": "14400",
    }
    fetched = twilio.messages(message.sid).fetch()
    assert fetched.status == "delivered"
    assert fetched.from_ == carrier.phone_number
    assert [w.params["MessageStatus"] for w in carrier.take_webhooks()] == ["sent", "delivered"]


def test_the_real_twilio_client_raises_on_an_unsubscribed_recipient(
    served: tuple[FakeCarrier, Client],
) -> None:
    _, twilio = served
    with pytest.raises(TwilioRestException) as caught:
        twilio.messages.create(to="+15005550004", from_="+15005550006", body="hi")
    assert caught.value.code == 21610
    assert caught.value.status == 400


def test_the_real_twilio_client_lists_a_voters_messages_since_a_moment(
    served: tuple[FakeCarrier, Client],
) -> None:
    carrier, twilio = served
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = twilio.messages.create(to=VOTER, from_="+15005550006", body="Will you vote?")
    twilio.messages.create(to=OTHER_VOTER, from_="+15005550006", body="Hello?")
    second = twilio.messages.create(to=VOTER, messaging_service_sid=SERVICE, body="Polls close")
    found = twilio.messages.list(to=VOTER, date_sent_after=before)
    assert [m.sid for m in found] == [second.sid, first.sid]
    assert found[0].status == "delivered" and found[0].messaging_service_sid == SERVICE
    assert twilio.messages.list(to=VOTER, date_sent_after=before + timedelta(minutes=5)) == []
    assert twilio.messages.list(to=VOTER, date_sent_before=before - timedelta(days=2)) == []
    assert len(twilio.messages.list(to=VOTER, page_size=1)) == 2  # follows next_page_uri
    assert len(carrier.messages) == 3


# -- the module itself -------------------------------------------------------------------------


def test_main_insists_on_credentials_from_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        fakecarrier.main(["--auth-token", TOKEN])
    assert "--account-sid" in capsys.readouterr().err


def test_the_command_line_sets_latency_and_can_turn_status_callbacks_off() -> None:
    credentials = ["--account-sid", SID, "--auth-token", TOKEN]
    plain = build_server(credentials)
    assert plain.latency == 0 and plain.carrier.status_callbacks
    assert plain.port == 8100
    bench = build_server([*credentials, "--port", "0", "--latency", "0.15", "--no-callbacks"])
    assert bench.latency == 0.15 and not bench.carrier.status_callbacks
    assert bench.carrier.account_sid == SID and bench.carrier.auth_token == TOKEN


# -- several accounts ----------------------------------------------------------------------------

SID_A = "AC" + "a" * 32
TOKEN_A = "1" * 32
SID_B = "AC" + "b" * 32
TOKEN_B = "2" * 32
NUMBER_A = "+15550100001"
NUMBER_B = "+15550200001"
POOL_A = ("+15550100011", "+15550100012")
SERVICE_A = "MG" + "a" * 32
SERVICE_B = "MG" + "b" * 32
PICTURE = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@pytest.fixture
def orgs(carrier: FakeCarrier) -> FakeCarrier:
    """The carrier with two more accounts, A and B, each with a number and a service; A's
    service has Advanced Opt-Out and two numbers, B's one."""
    carrier.add_account(SID_A, TOKEN_A, friendly_name="Org A", numbers=[NUMBER_A])
    carrier.add_account(SID_B, TOKEN_B, friendly_name="Org B", numbers=[NUMBER_B])
    carrier.add_service(SID_A, SERVICE_A, numbers=POOL_A, advanced_opt_out=True)
    carrier.add_service(SID_B, SERVICE_B, numbers=["+15550200011"])
    return carrier


def messages_url(account: str) -> str:
    return f"/2010-04-01/Accounts/{account}/Messages.json"


def send_as(
    client: Api, account: str, token: str, username: str | None = None, **fields: str
) -> requests.Response:
    """A send on ``account``'s path, with Basic auth ``(username or account, token)``."""
    form = {"To": VOTER, "Body": "Will you vote?", **fields}
    return client.post(messages_url(account), data=form, auth=(username or account, token))


def assert_signed_with(webhook: Webhook, token: str) -> None:
    signature = webhook.headers["X-Twilio-Signature"]
    assert RequestValidator(token).validate(webhook.url, webhook.params, signature)


def test_a_new_account_gets_a_fresh_sid_and_a_32_hex_digit_token(carrier: FakeCarrier) -> None:
    account = carrier.add_account(friendly_name="Org C", numbers=["+15550300001"])
    assert re.fullmatch(r"AC[0-9a-f]{32}", account.sid)
    assert re.fullmatch(r"[0-9a-f]{32}", account.auth_token)
    assert account.numbers == ["+15550300001"] and account.strict
    assert carrier.account(account.sid) is account
    assert carrier.accounts() == [carrier.main, account]
    assert carrier.owner_of("+15550300001") is account
    assert carrier.owner_of("+15559999999") is carrier.main  # nobody's: the main account's


def test_setting_up_accounts_refuses_what_twilio_would_not_allow(orgs: FakeCarrier) -> None:
    with pytest.raises(ValueError, match="already belongs"):
        orgs.add_account(numbers=["+15550300001", NUMBER_A])
    assert len(orgs.accounts()) == 3 and orgs.owner_of("+15550300001") is orgs.main  # none
    with pytest.raises(ValueError, match="already belongs"):
        orgs.add_number(SID_B, POOL_A[0])
    with pytest.raises(ValueError, match="already exists"):
        orgs.add_account(SID_A)
    with pytest.raises(ValueError, match="not an account SID"):
        orgs.add_account("AC123")
    with pytest.raises(ValueError, match="no account"):
        orgs.add_account(parent_sid="AC" + "9" * 32)
    sub = orgs.add_account(parent_sid=SID_A)
    with pytest.raises(ValueError, match="subaccount"):
        orgs.add_account(parent_sid=sub.sid)
    with pytest.raises(ValueError, match="already in Messaging Service"):
        orgs.add_service(SID_A, numbers=["+15550100098", POOL_A[0]])
    assert list(orgs.services(SID_A)) == [SERVICE_A]
    with pytest.raises(ValueError, match="not a service of"):
        orgs.add_number(SID_B, "+15550200099", service_sid=SERVICE_A)


def test_a_strict_account_sends_only_from_its_own_numbers(orgs: FakeCarrier, client: Api) -> None:
    assert send_as(client, SID_A, TOKEN_A, From=NUMBER_A).status_code == 201
    assert send_as(client, SID_A, TOKEN_A, From=POOL_A[1]).status_code == 201  # its service's
    for number in (NUMBER_B, "+15559990000"):
        refused = send_as(client, SID_A, TOKEN_A, From=number)
        assert refused.status_code == 400
        assert is_twilio_error(json_of(refused), 21660, 400)
        assert SID_A in json_of(refused)["message"]
    # The main account sends from a number nobody owns, but not from another account's.
    assert send(client, From="+15559990000").status_code == 201
    assert json_of(send(client, From=NUMBER_B))["code"] == 21660
    assert [m["from"] for m in orgs.messages] == [NUMBER_A, POOL_A[1], "+15559990000"]


def test_a_strict_account_sends_only_through_its_own_services(
    orgs: FakeCarrier, client: Api
) -> None:
    for service in (SERVICE_B, "MG" + "9" * 32):
        refused = send_as(client, SID_A, TOKEN_A, MessagingServiceSid=service)
        assert refused.status_code == 400
        assert is_twilio_error(json_of(refused), 21701, 400)
    empty = orgs.add_service(SID_A)
    assert json_of(send_as(client, SID_A, TOKEN_A, MessagingServiceSid=empty))["code"] == 21704
    # The main account may not use another account's service either.
    assert json_of(send(client, From="-", MessagingServiceSid=SERVICE_A))["code"] == 21701
    assert orgs.messages == []


def test_a_service_send_picks_a_pool_number_and_sticks_to_it_per_voter(
    orgs: FakeCarrier, client: Api
) -> None:
    def sender(voter: str) -> str:
        response = send_as(client, SID_A, TOKEN_A, MessagingServiceSid=SERVICE_A, To=voter)
        assert json_of(response)["from"] is None  # chosen after the answer, as with Twilio
        sent: str = orgs.messages[-1]["from"]
        return sent

    first, other = sender(VOTER), sender(OTHER_VOTER)
    assert {first, other} == set(POOL_A)
    assert [sender(VOTER), sender(OTHER_VOTER)] == [first, other]
    assert orgs.reply(VOTER, "who is this?").params["To"] == first


def test_an_accounts_credentials_act_on_its_own_and_its_subaccounts_paths_only(
    orgs: FakeCarrier, client: Api
) -> None:
    sub = orgs.add_account(parent_sid=SID_A, numbers=["+15550100099"])
    as_parent = send_as(client, sub.sid, TOKEN_A, username=SID_A, From="+15550100099")
    assert as_parent.status_code == 201
    assert json_of(as_parent)["account_sid"] == sub.sid
    assert send_as(client, sub.sid, sub.auth_token, From="+15550100099").status_code == 201
    for account, username, token in [
        (SID_A, sub.sid, sub.auth_token),  # a subaccount cannot act for its parent
        (SID_B, SID_A, TOKEN_A),  # nor an account for another
        (SID_A, SID_A, TOKEN_B),
        (SID_A, SID_B, TOKEN_B),
        (sub.sid, SID_B, TOKEN_B),
    ]:
        refused = send_as(client, account, token, username=username, From=NUMBER_A)
        assert refused.status_code == 401
        assert is_twilio_error(json_of(refused), 20003, 401)


def test_an_api_key_acts_for_its_account_but_a_standard_key_cannot_fetch_accounts(
    orgs: FakeCarrier, client: Api
) -> None:
    key, secret = orgs.add_api_key(SID_A)
    assert re.fullmatch(r"SK[0-9a-f]{32}", key) and re.fullmatch(r"[0-9a-f]{32}", secret)
    assert send_as(client, SID_A, secret, username=key, From=NUMBER_A).status_code == 201
    assert send_as(client, SID_A, "wrong", username=key, From=NUMBER_A).status_code == 401
    assert send_as(client, SID_B, secret, username=key, From=NUMBER_B).status_code == 401
    account_url = f"/2010-04-01/Accounts/{SID_A}.json"
    assert client.get(account_url, auth=(key, secret)).status_code == 401
    main_key, main_secret = orgs.add_api_key(SID_A, main=True)
    assert json_of(client.get(account_url, auth=(main_key, main_secret)))["sid"] == SID_A


def test_each_account_lists_and_fetches_only_its_own_messages(
    orgs: FakeCarrier, client: Api
) -> None:
    mine = json_of(send_as(client, SID_A, TOKEN_A, From=NUMBER_A))
    theirs = json_of(send_as(client, SID_B, TOKEN_B, From=NUMBER_B))
    orgs.reply(VOTER, "Yes", to=NUMBER_A)
    listed_a = json_of(client.get(messages_url(SID_A), auth=(SID_A, TOKEN_A)))["messages"]
    assert [(m["direction"], m["account_sid"]) for m in listed_a] == [
        ("inbound", SID_A),
        ("outbound-api", SID_A),
    ]
    assert mine["account_sid"] == SID_A and theirs["account_sid"] == SID_B
    assert client.get(mine["uri"], auth=(SID_A, TOKEN_A)).status_code == 200
    stolen = client.get(theirs["uri"].replace(SID_B, SID_A), auth=(SID_A, TOKEN_A))
    assert stolen.status_code == 404
    assert listed(client)["messages"] == []  # the main account sent nothing


def test_status_callbacks_carry_the_sending_account_and_are_signed_with_its_token(
    orgs: FakeCarrier, client: Api
) -> None:
    send_as(client, SID_A, TOKEN_A, From=NUMBER_A, StatusCallback=CALLBACK)
    send_as(client, SID_B, TOKEN_B, MessagingServiceSid=SERVICE_B, StatusCallback=CALLBACK)
    webhooks = orgs.take_webhooks()
    by_account = {
        w.params["AccountSid"]: w for w in webhooks if w.params["MessageStatus"] == "sent"
    }
    assert set(by_account) == {SID_A, SID_B}
    assert_signed_with(by_account[SID_A], TOKEN_A)
    assert_signed_with(by_account[SID_B], TOKEN_B)
    assert "MessagingServiceSid" not in by_account[SID_A].params
    assert by_account[SID_B].params["MessagingServiceSid"] == SERVICE_B
    assert by_account[SID_B].params["From"] == "+15550200011"


# -- replies to several accounts -----------------------------------------------------------------


def test_a_reply_to_an_accounts_number_is_that_accounts_and_signed_with_its_token(
    orgs: FakeCarrier,
) -> None:
    to_a = orgs.reply(VOTER, "Please stop texting me", to=NUMBER_A)
    to_b = orgs.reply(VOTER, "Count me in", to=NUMBER_B)
    assert (to_a.params["AccountSid"], to_b.params["AccountSid"]) == (SID_A, SID_B)
    assert_signed_with(to_a, TOKEN_A)
    assert_signed_with(to_b, TOKEN_B)
    signature = to_a.headers["X-Twilio-Signature"]
    assert not RequestValidator(TOKEN_B).validate(to_a.url, to_a.params, signature)
    assert "MessagingServiceSid" not in to_a.params


def test_a_reply_to_a_service_number_names_the_service(orgs: FakeCarrier) -> None:
    params = orgs.reply(VOTER, "hi", to=POOL_A[0]).params
    assert params["AccountSid"] == SID_A and params["MessagingServiceSid"] == SERVICE_A


def test_a_reply_to_a_number_nobody_owns_arrives_as_the_main_accounts(orgs: FakeCarrier) -> None:
    webhook = orgs.reply(VOTER, "STOP", to="+15559990000")
    assert webhook.params["AccountSid"] == SID
    assert_signed(webhook)


def test_a_stop_to_a_service_number_blocks_that_service_only(
    orgs: FakeCarrier, client: Api
) -> None:
    orgs.reply(VOTER, "STOP", to=POOL_A[1])
    for sender in ({"MessagingServiceSid": SERVICE_A}, {"From": POOL_A[0]}):
        blocked = send_as(client, SID_A, TOKEN_A, **sender)
        assert json_of(blocked)["code"] == 21610
    assert send_as(client, SID_A, TOKEN_A, From=NUMBER_A).status_code == 201
    assert send_as(client, SID_B, TOKEN_B, MessagingServiceSid=SERVICE_B).status_code == 201


@pytest.mark.parametrize(
    ("body", "opt_out_type"),
    [
        ("STOP", "STOP"),
        ("unsubscribe", "STOP"),
        (" Quit ", "STOP"),
        ("REVOKE", "STOP"),
        ("START", "START"),
        ("yes", "START"),
        ("UNSTOP", "START"),
        ("HELP", "HELP"),
        ("info", "HELP"),
    ],
)
def test_advanced_opt_out_marks_each_keyword_reply_with_its_opt_out_type(
    orgs: FakeCarrier, body: str, opt_out_type: str
) -> None:
    assert orgs.reply(VOTER, body, to=POOL_A[0]).params["OptOutType"] == opt_out_type


def test_without_advanced_opt_out_or_a_keyword_there_is_no_opt_out_type(orgs: FakeCarrier) -> None:
    assert "OptOutType" not in orgs.reply(VOTER, "STOP", to="+15550200011").params
    assert "OptOutType" not in orgs.reply(VOTER, "STOP", to=NUMBER_A).params
    assert "OptOutType" not in orgs.reply(VOTER, "stop please", to=POOL_A[0]).params


def test_help_draws_twilios_help_reply_without_blocking_anything(
    orgs: FakeCarrier, client: Api
) -> None:
    orgs.reply(VOTER, "HELP", to=NUMBER_A)
    auto_reply = orgs.conversations()[VOTER][-1]
    assert auto_reply["direction"] == "outbound-reply" and "STOP" in auto_reply["body"]
    assert auto_reply["account_sid"] == SID_A
    assert send_as(client, SID_A, TOKEN_A, From=NUMBER_A).status_code == 201


def test_a_reply_with_pictures_is_an_mms_whose_urls_serve_the_bytes_to_its_account(
    orgs: FakeCarrier, client: Api, carrier_server: CarrierServer
) -> None:
    webhook = orgs.reply(
        VOTER, "my polling place", to=NUMBER_A, media=[("image/png", PICTURE), ("text/plain", b"x")]
    )
    params = webhook.params
    assert re.fullmatch(r"MM[0-9a-f]{32}", params["MessageSid"])
    assert params["NumMedia"] == "2"
    assert (params["MediaContentType0"], params["MediaContentType1"]) == ("image/png", "text/plain")
    url = params["MediaUrl0"]
    assert url.startswith(f"{carrier_server.url}/2010-04-01/Accounts/{SID_A}/Messages/")
    assert_signed_with(webhook, TOKEN_A)
    picture = client.session.get(url, auth=(SID_A, TOKEN_A))
    assert picture.status_code == 200
    assert picture.content == PICTURE and picture.headers["Content-Type"] == "image/png"
    assert client.session.get(url).status_code == 401
    assert client.session.get(url, auth=(SID_B, TOKEN_B)).status_code == 401
    metadata = json_of(client.session.get(url + ".json", auth=(SID_A, TOKEN_A)))
    assert metadata["content_type"] == "image/png"
    assert metadata["parent_sid"] == params["MessageSid"]
    message_url = f"/2010-04-01/Accounts/{SID_A}/Messages/{params['MessageSid']}.json"
    fetched = json_of(client.get(message_url, auth=(SID_A, TOKEN_A)))
    assert fetched["num_media"] == "2"


def test_a_served_carrier_learns_the_servers_url_for_its_media(
    carrier_server: CarrierServer,
) -> None:
    fresh = FakeCarrier(SID, TOKEN, inbound_url=INBOUND)
    assert (
        fresh.reply(VOTER, "", media=[("image/png", PICTURE)])
        .params["MediaUrl0"]
        .startswith("https://api.twilio.com/2010-04-01/")
    )
    carrier_server.carrier = fresh
    assert fresh.base_url == carrier_server.url


def test_an_outbound_mms_lists_its_media_and_its_url_redirects_to_the_source(
    client: Api,
) -> None:
    source = "https://gotv.example/flyer.png"
    message = json_of(send(client, MediaUrl=source))
    media_list = client.get(message["subresource_uris"]["media"], auth=(SID, TOKEN))
    (item,) = json_of(media_list)["media_list"]
    assert item["content_type"] == "image/png"
    content = client.get(item["uri"].removesuffix(".json"), auth=(SID, TOKEN))
    assert content.status_code == 302 and content.headers["Location"] == source


# -- accounts, numbers, services and media through the real twilio client -----------------------


@pytest.fixture
def twilio_as(orgs: FakeCarrier, carrier_server: CarrierServer) -> Iterator[Callable[..., Client]]:
    """Real twilio clients on the served carrier: ``twilio_as(username, password[, account])``,
    with both the API's and the Messaging API's base URL pointed at it."""
    carrier_server.carrier = orgs
    made: list[Client] = []

    def make(username: str, password: str, account_sid: str | None = None) -> Client:
        twilio = Client(username, password, account_sid)
        twilio.api.base_url = carrier_server.url
        twilio.messaging.base_url = carrier_server.url
        made.append(twilio)
        return twilio

    yield make
    for twilio in made:
        session = getattr(twilio.http_client, "session", None)
        if session is not None:
            session.close()


def test_the_real_twilio_client_fetches_an_account_with_its_token(
    twilio_as: Callable[..., Client],
) -> None:
    account = twilio_as(SID_A, TOKEN_A).api.v2010.accounts(SID_A).fetch()
    assert (account.sid, account.auth_token, account.status) == (SID_A, TOKEN_A, "active")
    assert account.friendly_name == "Org A" and account.owner_account_sid == SID_A
    with pytest.raises(TwilioRestException) as caught:
        twilio_as(SID_A, TOKEN_B).api.v2010.accounts(SID_A).fetch()
    assert (caught.value.status, caught.value.code) == (401, 20003)
    with pytest.raises(TwilioRestException):
        twilio_as(SID_A, TOKEN_A).api.v2010.accounts(SID_B).fetch()


def test_the_real_twilio_client_lists_an_accounts_numbers_by_phone_number(
    orgs: FakeCarrier, twilio_as: Callable[..., Client]
) -> None:
    twilio = twilio_as(SID_A, TOKEN_A)
    everything = twilio.incoming_phone_numbers.list()
    assert [n.phone_number for n in everything] == [NUMBER_A, *POOL_A]
    assert all(n.account_sid == SID_A and n.sid.startswith("PN") for n in everything)
    (found,) = twilio.incoming_phone_numbers.list(phone_number=NUMBER_A)
    assert found.friendly_name == "(555) 010-0001" and found.capabilities["sms"] is True
    assert twilio.incoming_phone_numbers.list(phone_number=NUMBER_B) == []
    assert len(twilio.incoming_phone_numbers.list(phone_number="555010001*")) == 2
    assert len(twilio.incoming_phone_numbers.list(page_size=1)) == 3  # follows the pages
    b_numbers = twilio_as(SID_B, TOKEN_B).incoming_phone_numbers.list(phone_number=NUMBER_A)
    assert b_numbers == []


def test_the_real_twilio_client_creates_a_subaccount_that_sends_from_its_numbers(
    orgs: FakeCarrier, twilio_as: Callable[..., Client]
) -> None:
    created = twilio_as(SID_A, TOKEN_A).api.v2010.accounts.create(friendly_name="Org A, ward 3")
    assert created.sid is not None and created.auth_token is not None
    assert (created.owner_account_sid, created.friendly_name) == (SID_A, "Org A, ward 3")
    assert orgs.account(created.sid).parent_sid == SID_A
    orgs.add_number(created.sid, "+15550100301")
    # The parent's credentials act for the subaccount, as the subaccount's own do.
    as_parent = twilio_as(SID_A, TOKEN_A, created.sid)
    message = as_parent.messages.create(to=VOTER, from_="+15550100301", body="hi")
    assert message.account_sid == created.sid
    own = twilio_as(created.sid, created.auth_token)
    assert [m.sid for m in own.messages.list()] == [message.sid]
    subaccounts = twilio_as(SID_A, TOKEN_A).api.v2010.accounts.list()
    assert [a.sid for a in subaccounts] == [SID_A, created.sid]
    with pytest.raises(TwilioRestException) as caught:
        own.api.v2010.accounts.create(friendly_name="no grandchildren")
    assert caught.value.status == 401


def test_the_real_twilio_client_fetches_an_accounts_service_and_its_numbers_only(
    twilio_as: Callable[..., Client],
) -> None:
    twilio = twilio_as(SID_A, TOKEN_A)
    service = twilio.messaging.v1.services(SERVICE_A).fetch()
    assert (service.sid, service.account_sid) == (SERVICE_A, SID_A)
    numbers = twilio.messaging.v1.services(SERVICE_A).phone_numbers.list(page_size=1)
    assert [n.phone_number for n in numbers] == list(POOL_A)  # two pages
    assert all(n.service_sid == SERVICE_A for n in numbers)
    for sid in (SERVICE_B, "MG" + "9" * 32):
        with pytest.raises(TwilioRestException) as caught:
            twilio.messaging.v1.services(sid).fetch()
        assert (caught.value.status, caught.value.code) == (404, 20404)
    with pytest.raises(TwilioException, match="20404"):  # a list raises the base exception
        twilio.messaging.v1.services(SERVICE_B).phone_numbers.list()


def test_the_real_twilio_client_works_with_an_api_key(
    orgs: FakeCarrier, twilio_as: Callable[..., Client]
) -> None:
    key, secret = orgs.add_api_key(SID_A)
    twilio = twilio_as(key, secret, SID_A)
    assert twilio.messages.create(to=VOTER, from_=NUMBER_A, body="hi").account_sid == SID_A
    assert twilio.messaging.v1.services(SERVICE_A).fetch().sid == SERVICE_A
    assert len(twilio.incoming_phone_numbers.list(phone_number=NUMBER_A)) == 1
    with pytest.raises(TwilioRestException) as caught:
        twilio.api.v2010.accounts(SID_A).fetch()  # a standard key may not
    assert caught.value.status == 401


def test_the_real_twilio_client_lists_and_fetches_a_replys_media(
    orgs: FakeCarrier, twilio_as: Callable[..., Client]
) -> None:
    params = orgs.reply(VOTER, "", to=NUMBER_A, media=[("image/jpeg", b"\xff\xd8jpeg")]).params
    message = twilio_as(SID_A, TOKEN_A).api.v2010.accounts(SID_A).messages(params["MessageSid"])
    (listed_media,) = message.media.list()
    assert listed_media.content_type == "image/jpeg"
    fetched = message.media(listed_media.sid).fetch()
    assert fetched.parent_sid == params["MessageSid"] and fetched.account_sid == SID_A
    assert params["MediaUrl0"].endswith(f"/Media/{fetched.sid}")
    other = twilio_as(SID_B, TOKEN_B).api.v2010.accounts(SID_B).messages(params["MessageSid"])
    with pytest.raises(TwilioException, match="20404"):
        other.media.list()


# -- requests in flight --------------------------------------------------------------------------


def test_an_account_over_its_concurrency_gets_429_at_once_and_others_go_on(
    orgs: FakeCarrier,
    carrier_server: CarrierServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    carrier_server.carrier = orgs
    # Long enough that the third request surely arrives while two are still being answered.
    monkeypatch.setattr(carrier_server, "latency", 1.0)
    limited = orgs.add_account(numbers=["+15550400001"], concurrency=2)

    def create(
        account: str = limited.sid, token: str = limited.auth_token, sender: str = "+15550400001"
    ) -> requests.Response:
        form = {"To": VOTER, "From": sender, "Body": "hi"}
        url = carrier_server.url + messages_url(account)
        return requests.post(url, data=form, auth=(account, token), timeout=10)

    with ThreadPoolExecutor(max_workers=3) as pool:
        slow = [pool.submit(create) for _ in range(2)]
        assert orgs.wait_for(lambda c: limited.in_flight == 2, timeout=5)
        other = pool.submit(create, SID_A, TOKEN_A, NUMBER_A)
        started = time.monotonic()
        refused = create()
        assert time.monotonic() - started < 1.0  # at once, not after the latency
        assert [f.result().status_code for f in slow] == [201, 201]
        assert other.result().status_code == 201  # another account's requests go on
    assert refused.status_code == 429
    assert is_twilio_error(json_of(refused), 20429, 429)
    assert (orgs.throttled, limited.throttled, limited.in_flight) == (1, 1, 0)
    monkeypatch.setattr(carrier_server, "latency", 0)
    assert create().status_code == 201  # room again
    assert create(token="wrong").status_code == 401  # not counted
    assert orgs.throttled == 1 and len(orgs.messages) == 4


def test_the_real_twilio_client_raises_on_a_429(
    orgs: FakeCarrier, twilio_as: Callable[..., Client]
) -> None:
    orgs.account(SID_A).concurrency = 1
    admitted = orgs.admit(SID_A, (SID_A, TOKEN_A))  # one request still being answered
    try:
        with pytest.raises(TwilioRestException) as caught:
            twilio_as(SID_A, TOKEN_A).messages.create(to=VOTER, from_=NUMBER_A, body="hi")
    finally:
        orgs.release(admitted)
    assert (caught.value.status, caught.value.code) == (429, 20429)
    assert twilio_as(SID_A, TOKEN_A).messages.create(to=VOTER, from_=NUMBER_A, body="hi").sid


# -- the contract, for accounts, numbers, services and media -------------------------------------

V2010_OPERATIONS = [
    ("/2010-04-01/Accounts.json", "post", "201"),
    ("/2010-04-01/Accounts.json", "get", "200"),
    ("/2010-04-01/Accounts/{Sid}.json", "get", "200"),
    ("/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json", "get", "200"),
    ("/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media.json", "get", "200"),
    ("/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{Sid}.json", "get", "200"),
]
MESSAGING_OPERATIONS = [
    ("/v1/Services/{Sid}", "get", "200"),
    ("/v1/Services/{ServiceSid}/PhoneNumbers", "get", "200"),
]


@pytest.fixture(scope="module")
def messaging_contract() -> dict[str, Any]:
    return twilio_contract.load_contract(twilio_contract.MESSAGING_CONTRACT)


def test_the_fake_serves_each_accounts_numbers_services_and_media_path_of_the_contracts(
    contract: dict[str, Any], messaging_contract: dict[str, Any]
) -> None:
    app = create_carrier_app(CarrierServer(FakeCarrier(SID, TOKEN)))
    routes: dict[str, set[str]] = {}
    for route in app.router.routes():
        if route.resource is not None:
            routes.setdefault(route.resource.canonical, set()).add(route.method)
    for spec, operations in (
        (contract, V2010_OPERATIONS),
        (messaging_contract, MESSAGING_OPERATIONS),
    ):
        for path, method, _ in operations:
            assert method in spec["paths"][path], path
            assert method.upper() in routes[path], path
    for path in (ACCOUNTS_ROUTE, ACCOUNT_ROUTE, INCOMING_NUMBERS_ROUTE, MEDIA_LIST_ROUTE):
        assert path in contract["paths"]
    assert MEDIA_ROUTE in contract["paths"] and MEDIA_CONTENT_ROUTE + ".json" == MEDIA_ROUTE
    assert {SERVICE_ROUTE, SERVICE_NUMBERS_ROUTE} <= set(messaging_contract["paths"])


def test_the_fake_reads_only_fields_and_filters_that_the_contracts_name(
    contract: dict[str, Any], messaging_contract: dict[str, Any]
) -> None:
    create_account = twilio_contract.form_schema(contract, ACCOUNTS_ROUTE, "post")
    assert set(CREATE_ACCOUNT_FIELDS) <= set(create_account["properties"])
    assert not create_account.get("required")  # the fake requires nothing either
    numbers = twilio_contract.query_parameters(contract, INCOMING_NUMBERS_ROUTE, "get")
    assert {*NUMBER_FILTERS, *PAGING_PARAMETERS} <= numbers
    accounts = twilio_contract.query_parameters(contract, ACCOUNTS_ROUTE, "get")
    assert {"FriendlyName", "Status", *PAGING_PARAMETERS} <= accounts
    assert set(PAGING_PARAMETERS) <= twilio_contract.query_parameters(
        contract, MEDIA_LIST_ROUTE, "get"
    )
    assert set(PAGING_PARAMETERS) <= twilio_contract.query_parameters(
        messaging_contract, SERVICE_NUMBERS_ROUTE, "get"
    )


def test_every_answer_about_accounts_numbers_services_and_media_conforms_to_the_contracts(
    orgs: FakeCarrier,
    client: Api,
    contract: dict[str, Any],
    messaging_contract: dict[str, Any],
) -> None:
    sub = json_of(
        client.post("/2010-04-01/Accounts.json", data={"FriendlyName": "w3"}, auth=(SID_A, TOKEN_A))
    )
    params = orgs.reply(VOTER, "see", to=NUMBER_A, media=[("image/png", PICTURE)]).params
    message = f"/2010-04-01/Accounts/{SID_A}/Messages/{params['MessageSid']}"
    media_sid = params["MediaUrl0"].rsplit("/", 1)[1]
    answers: dict[tuple[str, str, str], dict[str, Any] | str] = {
        (ACCOUNTS_ROUTE, "post", "201"): sub,
        (ACCOUNTS_ROUTE, "get", "200"): "/2010-04-01/Accounts.json?PageSize=1",
        (ACCOUNT_ROUTE, "get", "200"): f"/2010-04-01/Accounts/{SID_A}.json",
        (INCOMING_NUMBERS_ROUTE, "get", "200"): (
            f"/2010-04-01/Accounts/{SID_A}/IncomingPhoneNumbers.json?PageSize=2"
        ),
        (MEDIA_LIST_ROUTE, "get", "200"): f"{message}/Media.json",
        (MEDIA_ROUTE, "get", "200"): f"{message}/Media/{media_sid}.json",
        (CONTRACT_PATH, "get", "200"): f"/2010-04-01/Accounts/{SID_A}/Messages.json",
    }
    checked = 0
    for (path, method, status), answer in answers.items():
        body = (
            answer
            if isinstance(answer, dict)
            else json_of(client.get(answer, auth=(SID_A, TOKEN_A)))
        )
        schema = twilio_contract.response_schema(contract, path, method, status)
        assert set(body) == set(schema["properties"]), path
        assert twilio_contract.problems(contract, schema, body) == [], path
        checked += 1
    for path, url in [
        (SERVICE_ROUTE, f"/v1/Services/{SERVICE_A}"),
        (SERVICE_NUMBERS_ROUTE, f"/v1/Services/{SERVICE_A}/PhoneNumbers?PageSize=1"),
    ]:
        body = json_of(client.get(url, auth=(SID_A, TOKEN_A)))
        schema = twilio_contract.response_schema(messaging_contract, path, "get")
        assert set(body) == set(schema["properties"]), path
        assert twilio_contract.problems(messaging_contract, schema, body) == [], path
        checked += 1
    assert checked == len(V2010_OPERATIONS) + len(MESSAGING_OPERATIONS) + 1


def test_every_item_in_an_answer_has_exactly_its_schemas_properties(
    orgs: FakeCarrier, client: Api, contract: dict[str, Any], messaging_contract: dict[str, Any]
) -> None:
    def items(path: str, key: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json_of(client.get(path, auth=(SID_A, TOKEN_A)))[key]
        assert found
        return found

    schemas = contract["components"]["schemas"]
    number = set(schemas["api.v2010.account.incoming_phone_number"]["properties"])
    numbers_url = f"/2010-04-01/Accounts/{SID_A}/IncomingPhoneNumbers.json"
    assert all(set(n) == number for n in items(numbers_url, "incoming_phone_numbers"))
    account = set(schemas["api.v2010.account"]["properties"])
    assert all(set(a) == account for a in items("/2010-04-01/Accounts.json", "accounts"))
    v1 = messaging_contract["components"]["schemas"]
    pool = set(v1["messaging.v1.service.phone_number"]["properties"])
    pool_url = f"/v1/Services/{SERVICE_A}/PhoneNumbers"
    assert all(set(n) == pool for n in items(pool_url, "phone_numbers"))
    assert set(json_of(client.get(f"/v1/Services/{SERVICE_A}", auth=(SID_A, TOKEN_A)))) == set(
        v1["messaging.v1.service"]["properties"]
    )


def test_unknown_messaging_api_paths_and_wrong_methods_get_twilios_error_json(
    orgs: FakeCarrier, client: Api
) -> None:
    unknown = client.get("/v1/Services/MG1/ShortCodes", auth=(SID_A, TOKEN_A))
    assert unknown.status_code == 404 and is_twilio_error(json_of(unknown), 20404, 404)
    wrong = client.request("DELETE", f"/v1/Services/{SERVICE_A}", auth=(SID_A, TOKEN_A))
    assert wrong.status_code == 405 and is_twilio_error(json_of(wrong), 20004, 405)
    assert client.get(f"/v1/Services/{SERVICE_A}").status_code == 401


# -- the voter page, the control endpoint and the command line for several accounts -------------


def test_the_voter_page_offers_the_numbers_that_texted_a_voter_and_names_their_accounts(
    orgs: FakeCarrier, client: Api
) -> None:
    send_as(client, SID_A, TOKEN_A, From=NUMBER_A, Body="From A")
    send_as(client, SID_B, TOKEN_B, MessagingServiceSid=SERVICE_B, Body="From B")
    page = client.get("/").text
    assert '<option value="+15550200011">+15550200011 (Org B)</option>' in page
    assert f'<option value="{NUMBER_A}">{NUMBER_A} (Org A)</option>' in page
    assert page.index('value="+15550200011"') < page.index(f'value="{NUMBER_A}"')  # latest first
    assert f"Org B via {SERVICE_B}" in page
    assert SID_A in page and "Org A" in page


def test_replying_on_the_voter_page_to_a_chosen_number_with_a_picture(
    orgs: FakeCarrier, client: Api
) -> None:
    send_as(client, SID_A, TOKEN_A, From=NUMBER_A)
    send_as(client, SID_B, TOKEN_B, From=NUMBER_B)
    response = client.post(
        "/reply",
        data={"from": VOTER, "body": "", "to": NUMBER_A},
        files={"media": ("booth.png", PICTURE, "image/png")},
    )
    assert response.status_code == 303
    (webhook,) = orgs.take_webhooks()
    assert (webhook.params["To"], webhook.params["AccountSid"]) == (NUMBER_A, SID_A)
    assert webhook.params["NumMedia"] == "1" and webhook.params["MediaContentType0"] == "image/png"
    assert "1 picture(s)" in client.get("/").text


def test_the_control_endpoint_replies_with_media_given_as_base64(
    orgs: FakeCarrier, client: Api
) -> None:
    media = [{"content_type": "image/png", "base64": base64.b64encode(PICTURE).decode()}]
    response = client.post(
        "/_carrier/reply", json={"from": VOTER, "body": "", "to": NUMBER_B, "media": media}
    )
    assert response.status_code == 201
    params = json_of(response)["params"]
    assert params["NumMedia"] == "1" and params["AccountSid"] == SID_B
    assert client.session.get(params["MediaUrl0"], auth=(SID_B, TOKEN_B)).content == PICTURE
    bad = client.post(
        "/_carrier/reply", json={"from": VOTER, "body": "x", "media": [{"base64": "!"}]}
    )
    assert bad.status_code == 400


def test_the_command_line_adds_accounts_with_numbers_and_limits_the_main_accounts_requests() -> (
    None
):
    credentials = ["--account-sid", SID, "--auth-token", TOKEN]
    server = build_server(
        [
            *credentials,
            "--concurrency",
            "5",
            "--account",
            f"{SID_A}:{TOKEN_A}:{NUMBER_A},{POOL_A[0]}",
            "--account",
            NUMBER_B,
        ]
    )
    main, a, b = server.carrier.accounts()
    assert main.concurrency == 5 and main.sid == SID
    assert (a.sid, a.auth_token, a.numbers) == (SID_A, TOKEN_A, [NUMBER_A, POOL_A[0]])
    assert b.numbers == [NUMBER_B] and re.fullmatch(r"AC[0-9a-f]{32}", b.sid)
    assert a.concurrency is None and build_server(credentials).carrier.main.concurrency is None


@pytest.mark.parametrize(
    "option",
    [
        ["--account", f"{SID_A}:{NUMBER_A}"],
        ["--account", f"{SID_A}:{TOKEN_A}:"],
        ["--account", "+15005550006"],  # the main account's number
        ["--concurrency", "0"],
    ],
)
def test_the_command_line_refuses_a_malformed_account_or_limit(option: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_server(["--account-sid", SID, "--auth-token", TOKEN, *option])


@pytest.mark.parametrize("name", sorted(twilio_contract.PATHS))
def test_the_repositorys_contracts_are_parts_of_twilios_published_ones(name: str) -> None:
    published = twilio_contract.PUBLISHED / name
    if not published.exists():
        pytest.skip(f"Twilio's whole contract is not at {published}")
    whole = json.loads(published.read_text(encoding="utf-8"))

    part = twilio_contract.part_of(whole, twilio_contract.PATHS[name])

    assert (twilio_contract.HERE / name).read_text(encoding="utf-8") == twilio_contract.written(
        part
    )
