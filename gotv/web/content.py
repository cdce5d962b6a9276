"""Pages and actions for a campaign's content: survey questions, canned responses, tags, the
script's live preview, and the tools volunteers use on a conversation.

Organizers edit on the campaign page (partials included from campaigns/show.html) and on
/settings/tags. Volunteers record answers and tags from the conversation page, which includes
inbox/_contact_tools.html; the Jinja globals that partial needs come from this blueprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import (
    Blueprint,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from gotv.campaigns import content
from gotv.db import db
from gotv.models import (
    Campaign,
    CannedResponse,
    Contact,
    ContactStatus,
    SurveyChoice,
    SurveyQuestion,
    Tag,
)
from gotv.texting import segments, texts
from gotv.web.auth import get_owned, organizer_required
from gotv.web.ids import IdField
from gotv.web.inbox import get_conversation, wants_json

bp = Blueprint("content", __name__)

PREVIEW_CONTACTS = 3


class QuestionForm(FlaskForm):
    text = StringField("Question", validators=[DataRequired(), Length(max=content.QUESTION_MAX)])
    choices = TextAreaField("Choices, one per line", validators=[Optional()])


class ChoiceForm(FlaskForm):
    label = StringField("Choice", validators=[DataRequired(), Length(max=content.CHOICE_MAX)])


class MoveForm(FlaskForm):
    direction = SelectField("Move", choices=["up", "down"])


class DeleteForm(FlaskForm):
    pass


class CannedForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=content.TITLE_MAX)])
    body = TextAreaField("Text", validators=[DataRequired(), Length(max=content.BODY_MAX)])


class CannedImportForm(FlaskForm):
    canned_file = FileField("CSV with the columns title and body", validators=[FileRequired()])


class PreviewForm(FlaskForm):
    script = TextAreaField("Script", validators=[Optional(), Length(max=content.BODY_MAX)])


class TagForm(FlaskForm):
    name = StringField("Tag", validators=[DataRequired(), Length(max=content.TAG_MAX)])


class AnswerForm(FlaskForm):
    question_id = IdField(validators=[DataRequired()])
    choice_id = IdField(validators=[Optional()])


def back_to_campaign(campaign: Campaign, anchor: str) -> ResponseReturnValue:
    return redirect(url_for("campaigns.show", campaign_id=campaign.id, _anchor=anchor))


def refused(error: content.ContentError) -> None:
    """Say why. The content functions check before they write, so there is nothing to undo."""
    flash(str(error), "error")


def step_of(form: MoveForm) -> int:
    return -1 if form.direction.data == "up" else 1


# --- What the partials need --------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """The script rendered for one real contact."""

    name: str
    text: str
    characters: int
    segments: int


def script_preview(campaign: Campaign, script: str) -> dict[str, Any]:
    """`script` rendered for up to PREVIEW_CONTACTS of the campaign's contacts (untexted first),
    with the merge fields the list cannot fill."""
    contacts = preview_contacts(campaign)
    previews = []
    for contact in contacts:
        text = texts.render(script, contact, current_user)
        count = segments.count(text, campaign.smart_encoding)
        name = f"{contact.first_name} {contact.last_name}".strip() or contact.cell
        previews.append(Preview(name, text, count.characters, count.segments))
    return {
        "unknown": texts.unknown_merge_fields(script, campaign.custom_field_names),
        "previews": [preview.__dict__ for preview in previews],
    }


def preview_contacts(campaign: Campaign) -> list[Contact]:
    """The first PREVIEW_CONTACTS contacts still to be texted, topped up with texted ones."""
    query = select(Contact).where(Contact.campaign_id == campaign.id).order_by(Contact.id)
    contacts = list(
        db.session.scalars(query.where(Contact.status == ContactStatus.NEW).limit(PREVIEW_CONTACTS))
    )
    if len(contacts) < PREVIEW_CONTACTS:
        contacts += db.session.scalars(
            query.where(Contact.status != ContactStatus.NEW).limit(PREVIEW_CONTACTS - len(contacts))
        )
    return contacts


@dataclass(frozen=True)
class QuestionTools:
    question: content.Question
    answer: int | None  # the chosen choice's id


@dataclass(frozen=True)
class ContactTools:
    """What a volunteer can do to a contact besides texting: canned replies, survey, tags."""

    canned: list[tuple[str, str]]  # (title, text filled in for the contact)
    questions: list[QuestionTools]
    tags: list[content.TagChoice]
    other_tags: list[content.TagChoice]  # the organization's tags the contact does not carry


def contact_tools(contact: Contact) -> ContactTools:
    """Everything inbox/_contact_tools.html shows for `contact` and the current user."""
    campaign = contact.campaign
    answers = content.current_answers(contact)
    tags, other_tags = content.tags_for(contact)
    return ContactTools(
        canned=content.canned_texts(campaign, contact, current_user),
        questions=[
            QuestionTools(question, answers.get(question.id))
            for question in content.survey(campaign)
        ],
        tags=tags,
        other_tags=other_tags,
    )


def campaign_content(campaign: Campaign) -> dict[str, Any]:
    """What the campaign page's survey, canned-response and preview partials show."""
    return {
        "questions": content.questions(campaign, include_retired=True),
        "canned": content.canned_responses(campaign),
        "preview": script_preview(campaign, campaign.script),
    }


@bp.app_context_processor
def content_helpers() -> dict[str, Any]:
    """Jinja globals: contact_tools(contact) and campaign_content(campaign), computed on call."""
    return {"contact_tools": contact_tools, "campaign_content": campaign_content}


# --- The script's live preview -----------------------------------------------------------


@bp.post("/campaigns/<int:campaign_id>/script/preview")
@organizer_required
def preview_script(campaign_id: int) -> ResponseReturnValue:
    """The draft script (not saved) rendered for a few real contacts, as JSON."""
    campaign = get_owned(Campaign, campaign_id)
    form = PreviewForm()
    if not form.validate_on_submit():
        return jsonify(error="The script can be at most 1,600 characters."), 400
    response = jsonify(script_preview(campaign, form.script.data or ""))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Survey questions --------------------------------------------------------------------


def owned_question(campaign: Campaign, question_id: int) -> SurveyQuestion:
    question = db.session.get(SurveyQuestion, question_id)
    if question is None or question.campaign_id != campaign.id:
        abort(404)
    return question


def owned_choice(question: SurveyQuestion, choice_id: int) -> SurveyChoice:
    choice = db.session.get(SurveyChoice, choice_id)
    if choice is None or choice.question_id != question.id:
        abort(404)
    return choice


@bp.post("/campaigns/<int:campaign_id>/questions")
@organizer_required
def add_question(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = QuestionForm()
    if not form.validate_on_submit():
        flash("Write the question, and at least two choices, one per line.", "error")
        return back_to_campaign(campaign, "survey")
    try:
        content.add_question(campaign, form.text.data or "", form.choices.data or "", current_user)
    except content.ContentError as error:
        refused(error)
    else:
        db.session.commit()
        flash("Question added.", "success")
    return back_to_campaign(campaign, "survey")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>")
@organizer_required
def edit_question(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    form = QuestionForm()
    if form.validate_on_submit():
        try:
            content.edit_question(question, form.text.data or "", current_user)
        except content.ContentError as error:
            refused(error)
        else:
            db.session.commit()
            flash("Question saved.", "success")
    else:
        flash("A question cannot be empty.", "error")
    return back_to_campaign(campaign, "survey")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/move")
@organizer_required
def move_question(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    form = MoveForm()
    if form.validate_on_submit():
        content.move_question(question, step_of(form), current_user)
        db.session.commit()
    return back_to_campaign(campaign, "survey")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/delete")
@organizer_required
def delete_question(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    if DeleteForm().validate_on_submit():
        deleted = content.delete_question(question, current_user)
        db.session.commit()
        flash(
            "Question deleted."
            if deleted
            else "The question has answers, so it is retired: volunteers no longer see it, "
            "and its answers stay on the dashboard.",
            "success",
        )
    return back_to_campaign(campaign, "survey")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices")
@organizer_required
def add_choice(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    form = ChoiceForm()
    if form.validate_on_submit():
        try:
            content.add_choice(question, form.label.data or "", current_user)
        except content.ContentError as error:
            refused(error)
        else:
            db.session.commit()
    return back_to_campaign(campaign, "survey")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>")
@organizer_required
def rename_choice(campaign_id: int, question_id: int, choice_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    choice = owned_choice(owned_question(campaign, question_id), choice_id)
    form = ChoiceForm()
    if form.validate_on_submit():
        try:
            content.rename_choice(choice, form.label.data or "", current_user)
        except content.ContentError as error:
            refused(error)
        else:
            db.session.commit()
    return back_to_campaign(campaign, "survey")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>/move")
@organizer_required
def move_choice(campaign_id: int, question_id: int, choice_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    choice = owned_choice(owned_question(campaign, question_id), choice_id)
    form = MoveForm()
    if form.validate_on_submit():
        content.move_choice(choice, step_of(form), current_user)
        db.session.commit()
    return back_to_campaign(campaign, "survey")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>/delete")
@organizer_required
def delete_choice(campaign_id: int, question_id: int, choice_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    choice = owned_choice(owned_question(campaign, question_id), choice_id)
    if DeleteForm().validate_on_submit():
        try:
            content.delete_choice(choice, current_user)
        except content.ContentError as error:
            refused(error)
        else:
            db.session.commit()
    return back_to_campaign(campaign, "survey")


# --- Canned responses --------------------------------------------------------------------


def owned_canned(campaign: Campaign, response_id: int) -> CannedResponse:
    response = db.session.get(CannedResponse, response_id)
    if response is None or response.campaign_id != campaign.id:
        abort(404)
    return response


@bp.post("/campaigns/<int:campaign_id>/canned")
@organizer_required
def add_canned(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = CannedForm()
    if not form.validate_on_submit():
        flash("A canned response needs a title and a text of up to 1,600 characters.", "error")
        return back_to_campaign(campaign, "canned")
    try:
        content.add_canned(campaign, form.title.data or "", form.body.data or "", current_user)
    except content.ContentError as error:
        refused(error)
    else:
        db.session.commit()
        flash("Canned response added.", "success")
    return back_to_campaign(campaign, "canned")


@bp.post("/campaigns/<int:campaign_id>/canned/<int:response_id>")
@organizer_required
def edit_canned(campaign_id: int, response_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    response = owned_canned(campaign, response_id)
    form = CannedForm()
    if not form.validate_on_submit():
        flash("A canned response needs a title and a text of up to 1,600 characters.", "error")
        return back_to_campaign(campaign, "canned")
    try:
        content.edit_canned(
            response, campaign, form.title.data or "", form.body.data or "", current_user
        )
    except content.ContentError as error:
        refused(error)
    else:
        db.session.commit()
        flash("Canned response saved.", "success")
    return back_to_campaign(campaign, "canned")


@bp.post("/campaigns/<int:campaign_id>/canned/<int:response_id>/delete")
@organizer_required
def delete_canned(campaign_id: int, response_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    response = owned_canned(campaign, response_id)
    if DeleteForm().validate_on_submit():
        content.delete_canned(response, campaign, current_user)
        db.session.commit()
        flash("Canned response deleted.", "success")
    return back_to_campaign(campaign, "canned")


@bp.post("/campaigns/<int:campaign_id>/canned/import")
@organizer_required
def import_canned(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = CannedImportForm()
    if not form.validate_on_submit():
        flash("Choose a CSV file with the columns title and body.", "error")
        return back_to_campaign(campaign, "canned")
    try:
        result = content.import_canned(campaign, form.canned_file.data.read(), current_user)
    except content.ContentError as error:
        refused(error)
        return back_to_campaign(campaign, "canned")
    db.session.commit()
    flash(
        f"{result.added} canned {'response' if result.added == 1 else 'responses'} added.",
        "success",
    )
    for line, problem in result.errors:
        flash(f"Line {line} not imported: {problem}", "error")
    return back_to_campaign(campaign, "canned")


# --- The organization's tags -------------------------------------------------------------


def owned_tag(tag_id: int) -> Tag:
    tag = db.session.get(Tag, tag_id)
    if tag is None or tag.organization_id != current_user.organization_id:
        abort(404)
    return tag


@bp.get("/settings/tags")
@organizer_required
def tags() -> ResponseReturnValue:
    return render_template(
        "settings/tags.html",
        tags=content.organization_tags(current_user.organization_id),
        form=TagForm(),
    )


@bp.post("/settings/tags")
@organizer_required
def add_tag() -> ResponseReturnValue:
    form = TagForm()
    if form.validate_on_submit():
        try:
            content.create_tag(current_user.organization_id, form.name.data or "", current_user)
        except content.ContentError as error:
            refused(error)
        else:
            db.session.commit()
            flash("Tag added.", "success")
    else:
        flash(f"A tag needs a name of up to {content.TAG_MAX} characters.", "error")
    return redirect(url_for("content.tags"))


@bp.post("/settings/tags/<int:tag_id>")
@organizer_required
def rename_tag(tag_id: int) -> ResponseReturnValue:
    tag = owned_tag(tag_id)
    form = TagForm()
    if form.validate_on_submit():
        try:
            content.rename_tag(tag, form.name.data or "", current_user)
        except content.ContentError as error:
            refused(error)
        else:
            db.session.commit()
            flash("Tag renamed.", "success")
    return redirect(url_for("content.tags"))


@bp.post("/settings/tags/<int:tag_id>/delete")
@organizer_required
def delete_tag(tag_id: int) -> ResponseReturnValue:
    tag = owned_tag(tag_id)
    if DeleteForm().validate_on_submit():
        name = tag.name
        removed = content.delete_tag(tag, current_user)
        db.session.commit()
        flash(f"Tag “{name}” deleted and taken off {removed} contacts.", "success")
    return redirect(url_for("content.tags"))


# --- Volunteers: answers and tags on a conversation ----------------------------------------


def back_to_conversation(
    contact: Contact, message: str = "", error: bool = False
) -> ResponseReturnValue:
    """JSON for the page's script (the contact's tags and answers now), else a redirect."""
    if wants_json():
        db.session.expire_all()
        body = {
            "ok": not error,
            "message": message,
            "tags": [
                {
                    "id": tag.id,
                    "name": tag.name,
                    "remove_url": url_for(
                        "content.untag_contact", contact_id=contact.id, tag_id=tag.id
                    ),
                }
                for tag in content.contact_tags(contact)
            ],
            "answers": {str(q): c for q, c in content.current_answers(contact).items()},
        }
        return jsonify(body), 400 if error else 200
    if message:
        flash(message, "error" if error else "success")
    return redirect(url_for("inbox.conversation", contact_id=contact.id))


@bp.post("/texting/conversations/<int:contact_id>/answers")
@login_required
def record_answer(contact_id: int) -> ResponseReturnValue:
    """Set or clear (no choice) the contact's answer to one question."""
    contact = get_conversation(contact_id)
    form = AnswerForm()
    if not form.validate_on_submit():
        return back_to_conversation(contact, gettext("Choose an answer."), error=True)
    try:
        answer = content.record_answer(
            contact, form.question_id.data or 0, form.choice_id.data or None, current_user
        )
    except content.ContentError as error:
        return back_to_conversation(contact, str(error), error=True)
    db.session.commit()
    return back_to_conversation(
        contact, gettext("Answer saved.") if answer else gettext("Answer cleared.")
    )


@bp.post("/texting/conversations/<int:contact_id>/tags")
@login_required
def tag_contact(contact_id: int) -> ResponseReturnValue:
    """Put a tag on the contact: one of the organization's, or a new one by that name."""
    contact = get_conversation(contact_id)
    form = TagForm()
    if not form.validate_on_submit():
        return back_to_conversation(contact, gettext("Choose or type a tag."), error=True)
    try:
        tag = content.tag_named(
            contact.campaign.organization_id, form.name.data or "", current_user
        )
        content.tag_contact(contact, tag, current_user)
    except content.ContentError as error:
        return back_to_conversation(contact, str(error), error=True)
    db.session.commit()
    return back_to_conversation(contact, gettext("Tagged “%(name)s”.", name=tag.name))


@bp.post("/texting/conversations/<int:contact_id>/tags/<int:tag_id>/remove")
@login_required
def untag_contact(contact_id: int, tag_id: int) -> ResponseReturnValue:
    contact = get_conversation(contact_id)
    tag = db.session.get(Tag, tag_id)
    if tag is None or tag.organization_id != contact.campaign.organization_id:
        abort(404)
    if DeleteForm().validate_on_submit():
        content.untag_contact(contact, tag, current_user)
        db.session.commit()
    return back_to_conversation(contact, gettext("Removed “%(name)s”.", name=tag.name))
