"""The audit log: `record` adds an entry; `page` reads an organization's back, newest first,
each entry in words (`sentence`) naming the people, campaigns, questions and answers it is
about, as they are called now (or as it recorded them).

Entries are only ever added (by `record`, in the transaction of the change they record); no
code path updates or deletes one. Texts sent are not entries: each message row records the
volunteer who sent it (`Message.texter_id`), which at a million sends is the audit trail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from gotv.db import db
from gotv.models import (
    ApiToken,
    AuditEvent,
    Campaign,
    Contact,
    ContactImport,
    SurveyChoice,
    SurveyQuestion,
    Tag,
    User,
)

PAGE_SIZE = 50


def record(
    organization_id: int,
    action: str,
    subject: str = "",
    user_id: int | None = None,
    **details: Any,
) -> None:
    """Append an entry to the organization's audit log, in this transaction: `user_id` did
    `action` to `subject` (a number, "campaign 7"...), with `details` as plain JSON values."""
    db.session.add(
        AuditEvent(
            organization_id=organization_id,
            user_id=user_id,
            action=action,
            subject=subject,
            details=details,
        )
    )


@dataclass(frozen=True)
class Ref:
    """A thing an entry names: its kind ("campaign", "contact", "question", "choice", "user",
    "tag", "import", "number", "token"), its id when it has one, and its name now (or as the
    entry recorded it, when it is gone). Pages turn it into a link."""

    kind: str
    id: int | None
    name: str
    campaign_id: int | None = None  # where a question, an answer or an import lives


# A sentence: words and the things it names, in order.
Part = str | Ref


@dataclass(frozen=True)
class Entry:
    id: int
    created_at: datetime
    action: str
    user_name: str | None
    subject: str
    details: dict[str, Any]
    sentence: tuple[Part, ...] = ()
    user_id: int | None = None

    @property
    def subject_said(self) -> bool:
        """True when the sentence names the subject (a campaign, a number...), so a page
        need not show it again."""
        template = SENTENCES.get(self.action, "")
        return bool(
            subject_ref(self.subject)
            or NUMBER.fullmatch(self.subject)
            or "@" in self.subject
            or "{subject}" in template
            or "{sender}" in template
        )

    @property
    def readable_details(self) -> list[tuple[str, str]]:
        """The details the sentence does not already say, as (label, text) pairs."""
        said = SAID_IN_SENTENCE.get(self.action, set()) | HIDDEN_DETAILS
        return [
            (key.replace("_", " "), readable(value))
            for key, value in self.details.items()
            if key not in said
        ]


@dataclass(frozen=True)
class Page:
    entries: list[Entry]
    next_before: int | None  # pass as `before` for older entries; None on the last page


def readable(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{key}: {readable(item)}" for key, item in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(readable(item) for item in value) or "—"
    if isinstance(value, str | int | float):
        return str(value)
    return json.dumps(value, default=str)


# --- Entries in words --------------------------------------------------------------------------
#
# Each action's sentence, with {placeholders} for the things it names: who (the person, the
# API token or gotv), and the campaign, contact, question, choice, tag, number, member, import
# or sender, found from the entry's subject ("campaign 7") and details ("question_id"), named
# as they are now (or as the entry recorded them). Any other {detail} is the detail's words.

SENTENCES = {
    "opt_out": "{who} opted out {number}",
    "opt_out_lifted": "{who} reversed the opt-out of {number}",
    "opt_out_suggestion_dismissed": "{who} read a reply from {number}: not an opt-out",
    "carrier_alert": "The carrier reported error {code} texting {number}",
    "message_settled": "{who} settled a text to {number} against Twilio",
    "opt_outs_exported": "{who} downloaded the opt-out list",
    "export": "{who} downloaded the {export} of {campaign}",
    "settings_changed": "{who} changed the organization's settings",
    "rate_limit_changed": "{who} changed the organization's sending limit",
    "sender_added": "{who} added the sender {sender}",
    "sender_changed": "{who} changed the pace of the sender {sender}",
    "campaign_sender_changed": "{who} changed the sender of {campaign}",
    "campaign_renamed": "{who} renamed {campaign}",
    "script_changed": "{who} changed the first message of {campaign}",
    "campaign_status_changed": "{who} set {campaign} to {status}",
    "smart_encoding_changed": "{who} switched Smart Encoding {smart_encoding} for {campaign}",
    "batch_settings_changed": "{who} changed how volunteers take contacts in {campaign}",
    "texting_hours_changed": "{who} set the texting hours of {campaign} to {new}",
    "time_zone_rule_changed": "{who} set {campaign} to follow {zone_rule}",
    "campaign_deleted": "{who} deleted {campaign}",
    "campaign_restored": "{who} restored {campaign}",
    "survey_question_added": "{who} added the question {question} to {campaign}",
    "survey_question_edited": "{who} reworded the question {question} in {campaign}",
    "survey_question_moved": "{who} moved the question {question} in {campaign}",
    "survey_question_retired": "{who} retired the question {question} in {campaign}",
    "survey_question_deleted": "{who} deleted the question {question} from {campaign}",
    "survey_choice_added": "{who} added the answer {choice} to {question}",
    "survey_choice_renamed": "{who} renamed the answer {choice} of {question}",
    "survey_choice_moved": "{who} moved the answer {choice} of {question}",
    "survey_choice_deleted": "{who} deleted the answer {choice} from {question}",
    "branch_script_changed": "{who} changed the script after {choice} to {question}",
    "survey_answer_recorded": "{who} recorded {choice} to {question} for {contact}",
    "survey_answer_cleared": "{who} cleared the answer to {question} for {contact}",
    "canned_response_added": "{who} added the canned response “{title}” to {campaign}",
    "canned_response_edited": "{who} edited the canned response “{title}” of {campaign}",
    "canned_response_deleted": "{who} deleted the canned response “{title}” of {campaign}",
    "tag_created": "{who} created the tag {tag}",
    "tag_renamed": "{who} renamed the tag {tag}",
    "tag_deleted": "{who} deleted the tag {tag}",
    "contact_tagged": "{who} tagged {contact} {tag}",
    "contact_untagged": "{who} took the tag {tag} off {contact}",
    "conversations_reassigned": "{who} reassigned {subject} to {to}",
    "recently_texted_included": "{who} added the recently texted numbers left out of a list "
    "to {campaign}",
    "api_campaign_created": "{who} created {campaign}",
    "api_campaign_status": "{who} set {campaign} to {status}",
    "api_campaign_hours": "{who} set the texting hours of {campaign} to {new}",
    "api_contacts_uploaded": "{who} uploaded a list: {import}",
    "api_opt_outs_imported": "{who} opted out {opted_out} of {numbers} numbers",
    "api_token_created": "{who} created the API token “{subject}”",
    "api_token_revoked": "{who} revoked the API token “{subject}”",
    "invite_created": "{who} created an invitation link for a new {role}",
    "invite_revoked": "{who} revoked an invitation link",
    "invite_used": "{who} joined through an invitation link, as {role}",
    "role_changed": "{who} changed the role of {member} from {before} to {after}",
    "member_suspended": "{who} suspended {member}",
    "member_reinstated": "{who} reinstated {member}",
    "two_factor_enabled": "{who} turned on two-step sign-in",
    "two_factor_disabled": "{who} turned off two-step sign-in for {member}",
    "sessions_ended": "{who} ended every session of {member}: {why}",
    "twilio_account_connected": "{who} connected the organization's Twilio account {subject}",
    "twilio_key_changed": "{who} changed the keys of the Twilio account {subject}",
    "twilio_account_disconnected": "{who} disconnected the Twilio account {subject}",
    "twilio_limits_changed": "{who} changed the limits of the Twilio account {subject}",
}
PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
# Details no person needs to read: the sentence names what they point to.
HIDDEN_DETAILS = {
    "campaign_id",
    "question_id",
    "choice_id",
    "contact_id",
    "user_id",
    "token_id",
    "after_choice_id",
    "canned_response_id",
    "sender_id",
    "from_import_id",
}
SAID_IN_SENTENCE = {
    action: set(PLACEHOLDER.findall(sentence)) | {"campaign", "question", "choice", "contact"}
    for action, sentence in SENTENCES.items()
}
SAID_IN_SENTENCE["time_zone_rule_changed"].add("trust_zip_alone")  # in words: {zone_rule}
NUMBER = re.compile(r"\+[0-9]{7,15}")
SUBJECT = re.compile(r"^(?:.* of )?(campaign|contact|tag|import|invite) ([0-9]+)$")
EXPORTS = {
    "contacts": "contacts",
    "messages": "messages",
    "van_survey_responses": "VAN survey responses",
    "van_do_not_text": "VAN do-not-text list",
    "import_rejections": "rows not loaded",
}


@dataclass
class Names:
    """The names of what a page of entries refers to, loaded in one query per kind."""

    campaigns: dict[int, str] = field(default_factory=dict)
    contacts: dict[int, tuple[str, int]] = field(default_factory=dict)
    questions: dict[int, tuple[str, int]] = field(default_factory=dict)
    choices: dict[int, tuple[str, int]] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    emails: dict[str, tuple[int, str]] = field(default_factory=dict)
    tags: dict[int, str] = field(default_factory=dict)
    imports: dict[int, tuple[str, int]] = field(default_factory=dict)
    tokens: dict[int, str] = field(default_factory=dict)


def subject_ref(subject: str) -> tuple[str, int] | None:
    match = SUBJECT.match(subject)
    return (match.group(1), int(match.group(2))) if match else None


def as_id(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def wanted_ids(events: list[AuditEvent]) -> dict[str, set[int]]:
    """The ids each entry refers to, by kind: from the subject and the details."""
    wanted: dict[str, set[int]] = {}
    for event in events:
        details = event.details or {}
        found = subject_ref(event.subject)
        pairs: list[tuple[str, Any]] = [found] if found else []
        pairs += [(kind, details.get(f"{kind}_id")) for kind in ID_KINDS]
        pairs += [("choice", details.get("after_choice_id")), ("user", details.get("to_user_id"))]
        pairs += [("user", event.user_id)]
        for kind, value in pairs:
            found_id = as_id(value)
            if found_id is not None:
                wanted.setdefault(kind, set()).add(found_id)
    return wanted


ID_KINDS = ("campaign", "question", "choice", "contact", "import", "token", "user")


def load_names(organization_id: int, events: list[AuditEvent]) -> Names:
    """Look up, for the organization only, every thing the entries refer to by id."""
    wanted = wanted_ids(events)
    emails = {event.subject.lower() for event in events if "@" in event.subject}
    names = Names()
    for kind, ids in wanted.items():
        loader = LOADERS.get(kind)
        if loader is not None:
            loader(names, organization_id, ids)
    if emails:
        load_members(names, organization_id, emails)
    return names


def load_campaigns(names: Names, organization_id: int, ids: set[int]) -> None:
    query = select(Campaign.id, Campaign.name).where(
        Campaign.id.in_(ids), Campaign.organization_id == organization_id
    )
    names.campaigns = {row[0]: row[1] for row in db.session.execute(query)}


def load_contacts(names: Names, organization_id: int, ids: set[int]) -> None:
    query = (
        select(Contact.id, Contact.first_name, Contact.last_name, Contact.cell, Campaign.id)
        .join(Campaign, Campaign.id == Contact.campaign_id)
        .where(Contact.id.in_(ids), Campaign.organization_id == organization_id)
    )
    names.contacts = {
        row[0]: (f"{row[1]} {row[2]}".strip() or row[3], row[4])
        for row in db.session.execute(query)
    }


def load_questions(names: Names, organization_id: int, ids: set[int]) -> None:
    query = (
        select(SurveyQuestion.id, SurveyQuestion.text, SurveyQuestion.campaign_id)
        .join(Campaign, Campaign.id == SurveyQuestion.campaign_id)
        .where(SurveyQuestion.id.in_(ids), Campaign.organization_id == organization_id)
    )
    names.questions = {row[0]: (row[1], row[2]) for row in db.session.execute(query)}


def load_choices(names: Names, organization_id: int, ids: set[int]) -> None:
    query = (
        select(SurveyChoice.id, SurveyChoice.label, SurveyQuestion.campaign_id)
        .join(SurveyQuestion, SurveyQuestion.id == SurveyChoice.question_id)
        .join(Campaign, Campaign.id == SurveyQuestion.campaign_id)
        .where(SurveyChoice.id.in_(ids), Campaign.organization_id == organization_id)
    )
    names.choices = {row[0]: (row[1], row[2]) for row in db.session.execute(query)}


def load_users(names: Names, organization_id: int, ids: set[int]) -> None:
    query = select(User.id, User.name).where(
        User.id.in_(ids), User.organization_id == organization_id
    )
    names.users = {row[0]: row[1] for row in db.session.execute(query)}


def load_members(names: Names, organization_id: int, emails: set[str]) -> None:
    query = select(User.id, User.name, User.email).where(
        User.email.in_(emails), User.organization_id == organization_id
    )
    names.emails = {row[2]: (row[0], row[1]) for row in db.session.execute(query)}


def load_tags(names: Names, organization_id: int, ids: set[int]) -> None:
    query = select(Tag.id, Tag.name).where(Tag.id.in_(ids), Tag.organization_id == organization_id)
    names.tags = {row[0]: row[1] for row in db.session.execute(query)}


def load_imports(names: Names, organization_id: int, ids: set[int]) -> None:
    query = select(ContactImport.id, ContactImport.filename, ContactImport.campaign_id).where(
        ContactImport.id.in_(ids), ContactImport.organization_id == organization_id
    )
    names.imports = {row[0]: (row[1], row[2]) for row in db.session.execute(query)}


def load_tokens(names: Names, organization_id: int, ids: set[int]) -> None:
    query = select(ApiToken.id, ApiToken.name).where(
        ApiToken.id.in_(ids), ApiToken.organization_id == organization_id
    )
    names.tokens = {row[0]: row[1] for row in db.session.execute(query)}


LOADERS: dict[str, Callable[[Names, int, set[int]], None]] = {
    "campaign": load_campaigns,
    "contact": load_contacts,
    "question": load_questions,
    "choice": load_choices,
    "user": load_users,
    "tag": load_tags,
    "import": load_imports,
    "token": load_tokens,
}


@dataclass(frozen=True)
class Said:
    """What a placeholder reads: the entry, who did it, its details, and the names."""

    event: AuditEvent
    user_name: str | None
    details: dict[str, Any]
    names: Names

    def subject_id(self, kind: str) -> int | None:
        found = subject_ref(self.event.subject)
        return found[1] if found and found[0] == kind else None


def sentence(event: AuditEvent, user_name: str | None, names: Names) -> tuple[Part, ...]:
    """The entry in words, naming what it refers to."""
    said = Said(event, user_name, dict(event.details or {}), names)
    template = SENTENCES.get(event.action) or "{who}: " + event.action.replace("_", " ") + (
        " {subject}" if event.subject else ""
    )
    parts: list[Part] = []
    at = 0
    for match in PLACEHOLDER.finditer(template):
        if match.start() > at:
            parts.append(template[at : match.start()])
        parts.extend(placeholder(match.group(1), said))
        at = match.end()
    if at < len(template):
        parts.append(template[at:])
    if event.action == "survey_question_added" and said.details.get("after"):
        parts.append(" after the answer ")
        parts.append(choice_ref(said.details.get("after_choice_id"), said.details["after"], names))
    return tuple(parts)


def placeholder(name: str, said: Said) -> list[Part]:
    """The words (and things) for one {placeholder} of a sentence."""
    named = NAMED.get(name)
    if named is not None:
        return [named(said)]
    value = said.details.get(name)
    return [readable(value) if value is not None else "—"]


def said_who(said: Said) -> Part:
    event = said.event
    if event.user_id is not None and said.user_name is not None:
        return Ref("user", event.user_id, said.user_name)
    token = said.names.tokens.get(as_id(said.details.get("token_id")) or 0)
    if token:
        return f"The API (token “{token}”)"
    if "token_id" in said.details:
        return "The API"
    if said.details.get("by") == "operator":
        return "An operator"
    return "gotv"


def said_campaign(said: Said) -> Part:
    campaign_id = as_id(said.details.get("campaign_id")) or said.subject_id("campaign")
    if campaign_id is None:
        return "a campaign"
    recorded = said.details.get("name") or said.details.get("campaign") or f"campaign {campaign_id}"
    return Ref("campaign", campaign_id, said.names.campaigns.get(campaign_id) or str(recorded))


def said_contact(said: Said) -> Part:
    contact_id = said.subject_id("contact") or as_id(said.details.get("contact_id"))
    known = said.names.contacts.get(contact_id or 0)
    if known:
        return Ref("contact", contact_id, known[0], known[1])
    return str(said.details.get("contact") or "a contact")


def said_question(said: Said) -> Part:
    question_id = as_id(said.details.get("question_id"))
    known = said.names.questions.get(question_id or 0)
    if known:
        return Ref("question", question_id, f"“{known[0]}”", known[1])
    recorded = said.details.get("question") or said.details.get("text")
    return f"“{recorded}”" if recorded else "a question"


def said_choice(said: Said) -> Part:
    details = said.details
    label = details.get("choice") or details.get("label") or details.get("new")
    return choice_ref(details.get("choice_id"), label, said.names)


def said_tag(said: Said) -> Part:
    tag_id = said.subject_id("tag")
    current = said.names.tags.get(tag_id or 0)
    recorded = said.details.get("tag") or said.details.get("name") or said.details.get("new")
    return Ref("tag", tag_id, f"“{current or recorded or 'a tag'}”")


def said_number(said: Said) -> Part:
    cell = said.event.subject if NUMBER.fullmatch(said.event.subject or "") else ""
    return Ref("number", None, cell) if cell else "a number"


def said_member(said: Said) -> Part:
    known = said.names.emails.get(said.event.subject.lower())
    return Ref("user", known[0], known[1]) if known else (said.event.subject or "someone")


def said_import(said: Said) -> Part:
    import_id = said.subject_id("import") or as_id(said.details.get("import_id"))
    known = said.names.imports.get(import_id or 0)
    if known:
        return Ref("import", import_id, known[0], known[1])
    return said.event.subject or "a list"


def said_export(said: Said) -> Part:
    what = str(said.details.get("export", ""))
    words = EXPORTS.get(what, what.replace("_", " ") or "download")
    if what == "import_rejections":
        imported = said_import(said)
        return (
            Ref(imported.kind, imported.id, f"{words} of {imported.name}", imported.campaign_id)
            if isinstance(imported, Ref)
            else f"{words} of {imported}"
        )
    return words


def said_to(said: Said) -> Part:
    to_id = as_id(said.details.get("to_user_id"))
    if to_id is not None and to_id in said.names.users:
        return Ref("user", to_id, said.names.users[to_id])
    return str(said.details.get("to") or "nobody")


NAMED: dict[str, Callable[[Said], Part]] = {
    "who": said_who,
    "campaign": said_campaign,
    "contact": said_contact,
    "question": said_question,
    "choice": said_choice,
    "tag": said_tag,
    "number": said_number,
    "member": said_member,
    "import": said_import,
    "export": said_export,
    "to": said_to,
    "sender": lambda said: said.event.subject or "a sender",
    "subject": lambda said: said.event.subject,
    "smart_encoding": lambda said: "on" if said.details.get("smart_encoding") else "off",
    "zone_rule": lambda said: (
        "the ZIP code alone for each voter's time zone"
        if said.details.get("trust_zip_alone")
        else "both the ZIP code's and the area code's time zones"
    ),
    "why": lambda said: str(said.details.get("why") or "—").replace("_", " "),
}


def choice_ref(choice_id: Any, recorded: Any, names: Names) -> Part:
    known = names.choices.get(choice_id) if isinstance(choice_id, int) else None
    if known:
        return Ref("choice", choice_id, f"“{known[0]}”", known[1])
    return f"“{recorded}”" if recorded else "an answer"


def page(
    organization_id: int, action: str = "", user_id: int | None = None, before: int | None = None
) -> Page:
    """Up to PAGE_SIZE of the organization's entries, newest first, older than `before`."""
    query = (
        select(AuditEvent, User.name)
        .outerjoin(User, User.id == AuditEvent.user_id)
        .where(AuditEvent.organization_id == organization_id)
        .order_by(AuditEvent.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if action:
        query = query.where(AuditEvent.action == action)
    if user_id is not None:
        query = query.where(AuditEvent.user_id == user_id)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    found = db.session.execute(query).all()
    rows = found[:PAGE_SIZE]
    names = load_names(organization_id, [event for event, _name in rows])
    entries = [
        Entry(
            id=event.id,
            created_at=event.created_at,
            action=event.action,
            user_name=name,
            subject=event.subject,
            details=dict(event.details or {}),
            sentence=sentence(event, name, names),
            user_id=event.user_id,
        )
        for event, name in rows
    ]
    return Page(entries, entries[-1].id if len(found) > PAGE_SIZE else None)


def actions(organization_id: int) -> list[str]:
    """The actions the organization's log holds, for the filter."""
    return list(
        db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.organization_id == organization_id)
            .distinct()
            .order_by(AuditEvent.action)
        )
    )
