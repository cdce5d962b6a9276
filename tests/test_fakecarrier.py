"""The fake carrier: Twilio's contract, signatures, callbacks, errors and the voter page."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
from multidict import MultiDict
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from gotv import fakecarrier
from gotv.fakecarrier import (
    CREATE_MESSAGE_FIELDS,
    LIST_FILTERS,
    ONE_OF_FIELDS,
    REQUIRED_FIELDS,
    CarrierServer,
    FakeCarrier,
    Webhook,
    build_server,
    create_carrier_app,
    twilio_signature,
)
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
