"""The volunteers' Spanish: the catalogs are complete and compiled, and no volunteer page shows
a string that did not go through the translations.

The last is checked with a pseudo-translation: a catalog built from messages.pot in which each
message reads ⟪as itself⟫. Rendered with it, every piece of text a volunteer page shows must be
inside ⟪ ⟫, or be data (names, messages, numbers, times): an English string left unmarked
shows up bare.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient

from gotv import create_app
from gotv.compliance import optouts
from gotv.db import db
from gotv.models import Organization, User
from gotv.web import i18n
from tests.conftest import config_like, csrf_token, login, take_batch
from tests.factories import (
    make_campaign,
    make_canned,
    make_contact,
    make_conversation,
    make_invite,
    make_question,
    make_tag,
)

ROOT = Path(__file__).resolve().parents[1]
TRANSLATIONS = ROOT / "gotv" / "translations"
LANGUAGES = ("es",)
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "lazy_gettext": None,
    "N_": None,
    "js_plural": (1, 2),
}

pytestmark = pytest.mark.usefixtures("weekday_morning")


def catalog(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle)


def marked_strings() -> set[str | tuple[str, ...]]:
    """Every string gotv marks for translation, as pybabel extracts it (scripts/translations)."""
    method_map = [("**.py", "python"), ("templates/**.html", "jinja2")]
    return {
        message[2] if isinstance(message[2], str) else tuple(message[2][:2])
        for message in extract_from_dir(
            str(ROOT / "gotv"), method_map, keywords={**KEYWORDS}, comment_tags=()
        )
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_string_has_a_translation_that_is_not_fuzzy(language: str) -> None:
    messages = catalog(language)
    translated = {message.id for message in messages if message.id}
    missing = marked_strings() - {key if isinstance(key, str) else key for key in translated}

    assert not missing, (
        f"run scripts/translations update and translate: {sorted(map(str, missing))}"
    )
    for message in messages:
        if message.id:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            assert all(strings) and not message.fuzzy, message.id


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_committed_compiled_catalog_matches_its_source(language: str) -> None:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo").open("rb") as handle:
        compiled = read_mo(handle)

    def strings(messages: Catalog) -> dict[object, object]:
        return {
            (tuple(message.id) if isinstance(message.id, list) else message.id): tuple(
                message.string
            )
            if isinstance(message.string, list | tuple)
            else message.string
            for message in messages
            if message.id
        }

    source, shipped = strings(catalog(language)), strings(compiled)
    assert shipped == source, "run scripts/translations compile and commit the .mo"


# --- No volunteer page shows an untranslated string ------------------------------------------

OPEN, CLOSE = "⟪", "⟫"
# Text that is not for translating: the brand, key caps, the zone of a time shown before the
# page's script puts it in the volunteer's own, the languages' own names, AM/PM of "their time".
NOT_WORDS = {"gotv", "UTC", "AM", "PM", "English", "Español"}


@pytest.fixture(scope="module")
def pseudo_translations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """gotv's messages, each ⟪as itself⟫, as the Spanish catalog of a translations folder."""
    with (TRANSLATIONS / "messages.pot").open("rb") as handle:
        template = read_po(handle)
    pseudo = Catalog(locale="es")
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            forms = tuple(OPEN + form + CLOSE for form in message.id)
            pseudo.add(message.id, forms + (forms[-1],) * (pseudo.num_plurals - len(forms)))
        else:
            pseudo.add(message.id, OPEN + message.id + CLOSE)
    folder = tmp_path_factory.mktemp("pseudo")
    (folder / "es" / "LC_MESSAGES").mkdir(parents=True)
    with (folder / "es" / "LC_MESSAGES" / "messages.mo").open("wb") as handle:
        write_mo(handle, pseudo)
    return folder


@pytest.fixture
def pseudo_client(app: Flask, pseudo_translations: Path) -> Iterator[FlaskClient]:
    variant = create_app(config_like(app, BABEL_TRANSLATION_DIRECTORIES=str(pseudo_translations)))
    client = variant.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "es"
    # Flask-Babel keeps loaded catalogs by language in one cache for every app of a process.
    translations = i18n.babel.domain_instance.cache
    translations.clear()
    yield client
    translations.clear()


class VisibleText(HTMLParser):
    """The text a page shows: text nodes and the attributes people read or hear."""

    SKIPPED = {"script", "style", "kbd"}
    ATTRIBUTES = {"aria-label", "placeholder", "alt"}

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.skipping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skipping.append(tag)
        self.texts += [value for name, value in attrs if name in self.ATTRIBUTES and value]

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and self.skipping[-1] == tag:
            self.skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.texts.append(data)


def untranslated(html: str, data: list[str]) -> list[str]:
    """The words outside ⟪ ⟫ on the page (its text, the attributes read aloud, the scripts'
    strings), once `data` is taken out. Text nodes are joined first: a translated sentence may
    hold an element (a count in a span)."""
    parser = VisibleText()
    parser.feed(html)
    strings = re.search(r'<script type="application/json" id="gotv-strings">(.*?)</script>', html)
    text = " ".join(parser.texts + (leaves(json.loads(strings.group(1))) if strings else []))
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    innermost = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")
    while innermost.search(text):
        text = innermost.sub(" ", text)
    return [word for word in re.findall(r"[^\W\d_]+", text) if word not in NOT_WORDS]


def leaves(value: object) -> list[str]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaves(item)]
    return [str(value)]


DATA = [
    "Ana",
    "Votante",
    "Vote Together",
    "Val",
    "Campaña Uno",
    "¿Dónde voto?",
    "Hola Ana, soy Val. ¿Votarás el martes?",
    "Dónde votar",
    "Ana, vota en la biblioteca.",
    "Necesita transporte",
    "¿Votará?",
    "Sí",
    "No",
    "Hello",  # the factories' initial text
]


@pytest.fixture
def volunteer_world(
    organization: Organization, organizer: User, volunteer: User
) -> dict[str, int | str]:
    """A campaign with a contact to send to and conversations of every kind, named in DATA."""
    campaign = make_campaign(
        organization,
        name="Campaña Uno",
        script="Hola {first_name}, soy {texter_name}. ¿Votarás el martes?",
    )
    make_canned(campaign, title="Dónde votar", body="{first_name}, vota en la biblioteca.")
    make_question(campaign, text="¿Votará?", labels=("Sí", "No"))
    make_tag(organization, name="Necesita transporte")
    make_contact(campaign, first_name="Ana", last_name="Votante")
    now = datetime.fromisoformat("2026-11-03T16:00:00+00:00")
    waiting = make_conversation(
        campaign,
        volunteer,
        replies=("¿Dónde voto?",),
        first_name="Ana",
        last_name="Votante",
        needs_reply=True,
        unread=1,
        opt_out_suggested=True,
        waiting_since=now - timedelta(minutes=12),
        last_message="¿Dónde voto?",
        last_message_at=now - timedelta(minutes=12),
    )
    stopped = make_conversation(campaign, volunteer, first_name="Ana", last_name="Votante")
    blocked = make_conversation(campaign, volunteer, first_name="Ana", last_name="Votante")
    optouts.record_opt_out(organization.id, stopped.cell, "admin", None)
    optouts.block_number(organization.id, blocked.cell, 30006, "landline")
    db.session.commit()
    _invite, token = make_invite(organizer, campaign_id=campaign.id)
    db.session.commit()
    return {
        "campaign": campaign.id,
        "waiting": waiting.id,
        "blocked": blocked.id,
        "invite": token,
    }


def test_no_volunteer_page_shows_an_untranslated_string(
    pseudo_client: FlaskClient, volunteer: User, volunteer_world: dict[str, int | str]
) -> None:
    client = pseudo_client
    assert volunteer.email  # loaded before the variant app's requests end the test's session
    pages = {"login": client.get("/login").get_data(as_text=True)}
    pages["join"] = client.get(f"/join/{volunteer_world['invite']}").get_data(as_text=True)
    pages["no such link"] = client.get("/join/nothing-here").get_data(as_text=True)
    login(client, volunteer)
    campaign = volunteer_world["campaign"]
    pages["texting"] = client.get("/texting").get_data(as_text=True)
    pages["send, newcomer"] = client.get(f"/texting/{campaign}/send").get_data(as_text=True)
    take_batch(client, campaign)
    pages["send"] = client.get(f"/texting/{campaign}/send").get_data(as_text=True)
    pages["queue"] = client.get(f"/texting/{campaign}/queue.json").get_data(as_text=True)
    pages["conversations"] = client.get(f"/texting/{campaign}/conversations").get_data(as_text=True)
    for name in ("waiting", "blocked"):
        pages[name] = client.get(f"/texting/conversations/{volunteer_world[name]}").get_data(
            as_text=True
        )
    pages["account"] = client.get("/account").get_data(as_text=True)
    pages["not found"] = client.get("/texting/conversations/99999999").get_data(as_text=True)
    pages["reply not sent"] = client.post(
        "/texting/conversations/99999999/reply",
        data={"csrf_token": csrf_token(pages["account"]), "body": "Ana, vota en la biblioteca."},
    ).get_data(as_text=True)

    data = [*DATA, volunteer.email]
    found = {name: untranslated(html, data) for name, html in pages.items() if name != "queue"}
    assert {name: texts for name, texts in found.items() if texts} == {}
    assert OPEN in pages["send"] and "⟪To⟫" in pages["send"]
