"""Pages and actions for a campaign's content: the script's questions and branches, canned
responses, tags, live checks of what organizers type, and the tools volunteers use on a
conversation.

Organizers edit on the campaign page (web/builder.py: its sections save in place) and on
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
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.csrf import generate_csrf as csrf_token
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from gotv.campaigns import content
from gotv.compliance import lint
from gotv.db import db
from gotv.models import Campaign, CannedResponse, Contact, SurveyChoice, SurveyQuestion, Tag
from gotv.texting import segments
from gotv.web import builder
from gotv.web.auth import get_owned, organizer_required
from gotv.web.ids import IdField
from gotv.web.inbox import get_conversation, wants_json

bp = Blueprint("content", __name__)


class QuestionForm(FlaskForm):
    text = StringField("Question", validators=[DataRequired(), Length(max=content.QUESTION_MAX)])
    choices = TextAreaField("Choices, one per line", validators=[Optional()])
    after_choice_id = IdField(validators=[Optional()])


class ChoiceForm(FlaskForm):
    label = StringField("Choice", validators=[DataRequired(), Length(max=content.CHOICE_MAX)])


class ScriptsForm(FlaskForm):
    """The wordings come as repeated `scripts` fields (request.form.getlist)."""


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
    recipients = IntegerField(validators=[Optional(), NumberRange(0, 10**9)])


class CheckForm(FlaskForm):
    text = TextAreaField("Text", validators=[Optional(), Length(max=content.BODY_MAX)])


class TagForm(FlaskForm):
    name = StringField("Tag", validators=[DataRequired(), Length(max=content.TAG_MAX)])


class AnswerForm(FlaskForm):
    question_id = IdField(validators=[DataRequired()])
    choice_id = IdField(validators=[Optional()])


def refused(error: content.ContentError) -> None:
    """Say why (tags page). The content functions check before they write: nothing to undo."""
    flash(str(error), "error")


def step_of(form: MoveForm) -> int:
    return -1 if form.direction.data == "up" else 1


# --- What the conversation page needs ----------------------------------------------------


@dataclass(frozen=True)
class ContactTools:
    """What a volunteer can do to a contact besides texting: canned replies, the script's
    questions along the contact's path (with the scripts after their answers), tags."""

    canned: list[tuple[str, str]]  # (title, text filled in for the contact)
    steps: list[content.Step]
    scripts: dict[int, list[str]]  # answer (choice id) -> its script, filled in, by wording
    tags: list[content.TagChoice]
    other_tags: list[content.TagChoice]  # the organization's tags the contact does not carry

    @property
    def questions(self) -> list[content.Step]:
        return self.steps


def contact_tools(contact: Contact) -> ContactTools:
    """Everything inbox/_contact_tools.html shows for `contact` and the current user."""
    campaign = contact.campaign
    answers = content.current_answers(contact)
    survey = content.survey(campaign)
    steps = survey.path(answers)
    tags, other_tags = content.tags_for(contact)
    return ContactTools(
        canned=content.canned_texts(campaign, contact, current_user),
        steps=steps,
        scripts={
            step.answer.id: content.follow_up(survey, step.answer.id, contact, current_user)
            for step in steps
            if step.answer is not None and step.answer.scripts
        },
        tags=tags,
        other_tags=other_tags,
    )


@bp.app_context_processor
def content_helpers() -> dict[str, Any]:
    """Jinja globals: contact_tools(contact), computed on call."""
    return {"contact_tools": contact_tools}


# --- Live checks while the organizer types -----------------------------------------------


@bp.post("/campaigns/<int:campaign_id>/script/preview")
@organizer_required
def preview_script(campaign_id: int) -> ResponseReturnValue:
    """The draft first message (not saved) rendered for a few real contacts, as JSON: unknown
    merge fields, the previews, the advice on it, and its cost for `recipients` texts."""
    campaign = get_owned(Campaign, campaign_id)
    form = PreviewForm()
    if not form.validate_on_submit():
        return jsonify(error="The script can be at most 1,600 characters."), 400
    script = form.script.data or ""
    report = builder.script_report(campaign, script, form.recipients.data or 0)
    warnings = lint.warnings(script, campaign.organization.name)
    result = builder.script_preview(campaign, script)
    result.update(
        warnings=warnings,
        needs_opt_out=lint.needs_opt_out_language(script),
        cost_html=render_template(
            "campaigns/builder/_cost.html", cost=report, describe_risk=segments.describe
        ),
    )
    response = jsonify(result)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/campaigns/<int:campaign_id>/check")
@organizer_required
def check_text(campaign_id: int) -> ResponseReturnValue:
    """A draft follow-up script or canned response, checked as it is typed: the merge fields
    the list cannot fill, and its length and segments for the first contact to text."""
    campaign = get_owned(Campaign, campaign_id)
    form = CheckForm()
    if not form.validate_on_submit():
        return jsonify(error=f"At most {content.BODY_MAX:,} characters."), 400
    text = form.text.data or ""
    previews = builder.script_preview(campaign, text)
    first = previews["previews"][0] if previews["previews"] else None
    counted = segments.count(first["text"] if first else text, campaign.smart_encoding)
    response = jsonify(
        unknown=previews["unknown"],
        characters=counted.characters,
        segments=counted.segments,
        sample=first["text"] if first else "",
        sample_name=first["name"] if first else "",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Questions and branches ----------------------------------------------------------------


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


def campaign_choice(campaign: Campaign, choice_id: int) -> SurveyChoice:
    """An answer to one of the campaign's questions, else 404."""
    choice = db.session.get(SurveyChoice, choice_id)
    if choice is None or choice.question.campaign_id != campaign.id:
        abort(404)
    return choice


def changed(campaign: Campaign, message: str) -> ResponseReturnValue:
    """A change to the questions committed: the section is drawn again."""
    db.session.commit()
    return builder.saved(campaign, "questions", message, redraw=("questions",))


def not_changed(campaign: Campaign, error: content.ContentError | str) -> ResponseReturnValue:
    return builder.refused(campaign, "questions", str(error))


@bp.post("/campaigns/<int:campaign_id>/questions")
@organizer_required
def add_question(campaign_id: int) -> ResponseReturnValue:
    """A new question, at the top or after one answer (`after_choice_id`)."""
    campaign = get_owned(Campaign, campaign_id)
    form = QuestionForm()
    if not form.validate_on_submit():
        return not_changed(campaign, "Write the question, and at least two choices, one per line.")
    after = (
        campaign_choice(campaign, form.after_choice_id.data) if form.after_choice_id.data else None
    )
    try:
        content.add_question(
            campaign, form.text.data or "", form.choices.data or "", current_user, after=after
        )
    except content.ContentError as error:
        return not_changed(campaign, error)
    return changed(campaign, "Question added.")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>")
@organizer_required
def edit_question(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    form = QuestionForm()
    if not form.validate_on_submit():
        return not_changed(campaign, "A question cannot be empty.")
    try:
        content.edit_question(question, form.text.data or "", current_user)
    except content.ContentError as error:
        return not_changed(campaign, error)
    return changed(campaign, "Question saved.")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/move")
@organizer_required
def move_question(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    form = MoveForm()
    if not form.validate_on_submit():
        return not_changed(campaign, "Move it up or down.")
    content.move_question(question, step_of(form), current_user)
    return changed(campaign, "Question moved.")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/delete")
@organizer_required
def delete_question(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    if not DeleteForm().validate_on_submit():
        return not_changed(campaign, "The form expired: reload the page.")
    deleted = content.delete_question(question, current_user)
    return changed(
        campaign,
        "Question deleted."
        if deleted
        else "The question has answers, so it is retired: volunteers no longer see it (nor the "
        "questions after its answers), and its answers stay on the dashboard.",
    )


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices")
@organizer_required
def add_choice(campaign_id: int, question_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    question = owned_question(campaign, question_id)
    form = ChoiceForm()
    if not form.validate_on_submit():
        return not_changed(campaign, f"An answer needs a label of up to {content.CHOICE_MAX}.")
    try:
        content.add_choice(question, form.label.data or "", current_user)
    except content.ContentError as error:
        return not_changed(campaign, error)
    return changed(campaign, "Answer added.")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>")
@organizer_required
def rename_choice(campaign_id: int, question_id: int, choice_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    choice = owned_choice(owned_question(campaign, question_id), choice_id)
    form = ChoiceForm()
    if not form.validate_on_submit():
        return not_changed(campaign, f"An answer needs a label of up to {content.CHOICE_MAX}.")
    try:
        content.rename_choice(choice, form.label.data or "", current_user)
    except content.ContentError as error:
        return not_changed(campaign, error)
    return changed(campaign, "Answer renamed.")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>/scripts")
@organizer_required
def save_scripts(campaign_id: int, question_id: int, choice_id: int) -> ResponseReturnValue:
    """The script that follows an answer, in its wordings. A refused one stays as typed."""
    campaign = get_owned(Campaign, campaign_id)
    choice = owned_choice(owned_question(campaign, question_id), choice_id)
    form = ScriptsForm()
    if not form.validate_on_submit():
        return not_changed(campaign, f"A script can be at most {content.BODY_MAX:,} characters.")
    try:
        content.save_scripts(choice, campaign, request.form.getlist("scripts"), current_user)
    except content.ContentError as error:
        return not_changed(campaign, f"{error}.")
    return changed(campaign, f"Script after “{choice.label}” saved.")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>/move")
@organizer_required
def move_choice(campaign_id: int, question_id: int, choice_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    choice = owned_choice(owned_question(campaign, question_id), choice_id)
    form = MoveForm()
    if not form.validate_on_submit():
        return not_changed(campaign, "Move it up or down.")
    content.move_choice(choice, step_of(form), current_user)
    return changed(campaign, "Answer moved.")


@bp.post("/campaigns/<int:campaign_id>/questions/<int:question_id>/choices/<int:choice_id>/delete")
@organizer_required
def delete_choice(campaign_id: int, question_id: int, choice_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    choice = owned_choice(owned_question(campaign, question_id), choice_id)
    if not DeleteForm().validate_on_submit():
        return not_changed(campaign, "The form expired: reload the page.")
    try:
        content.delete_choice(choice, current_user)
    except content.ContentError as error:
        return not_changed(campaign, error)
    return changed(campaign, "Answer deleted.")


# --- Canned responses --------------------------------------------------------------------


def owned_canned(campaign: Campaign, response_id: int) -> CannedResponse:
    response = db.session.get(CannedResponse, response_id)
    if response is None or response.campaign_id != campaign.id:
        abort(404)
    return response


def canned_changed(campaign: Campaign, message: str) -> ResponseReturnValue:
    db.session.commit()
    return builder.saved(campaign, "canned", message, redraw=("canned",))


def canned_refused(campaign: Campaign, error: content.ContentError | str) -> ResponseReturnValue:
    return builder.refused(campaign, "canned", str(error))


CANNED_NEEDS = "A canned response needs a title and a text of up to 1,600 characters."


@bp.post("/campaigns/<int:campaign_id>/canned")
@organizer_required
def add_canned(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = CannedForm()
    if not form.validate_on_submit():
        return canned_refused(campaign, CANNED_NEEDS)
    try:
        content.add_canned(campaign, form.title.data or "", form.body.data or "", current_user)
    except content.ContentError as error:
        return canned_refused(campaign, error)
    return canned_changed(campaign, "Canned response added.")


@bp.post("/campaigns/<int:campaign_id>/canned/<int:response_id>")
@organizer_required
def edit_canned(campaign_id: int, response_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    response = owned_canned(campaign, response_id)
    form = CannedForm()
    if not form.validate_on_submit():
        return canned_refused(campaign, CANNED_NEEDS)
    try:
        content.edit_canned(
            response, campaign, form.title.data or "", form.body.data or "", current_user
        )
    except content.ContentError as error:
        return canned_refused(campaign, error)
    return canned_changed(campaign, "Canned response saved.")


@bp.post("/campaigns/<int:campaign_id>/canned/<int:response_id>/delete")
@organizer_required
def delete_canned(campaign_id: int, response_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    response = owned_canned(campaign, response_id)
    if not DeleteForm().validate_on_submit():
        return canned_refused(campaign, "The form expired: reload the page.")
    content.delete_canned(response, campaign, current_user)
    return canned_changed(campaign, "Canned response deleted.")


@bp.post("/campaigns/<int:campaign_id>/canned/import")
@organizer_required
def import_canned(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = CannedImportForm()
    if not form.validate_on_submit():
        return canned_refused(campaign, "Choose a CSV file with the columns title and body.")
    try:
        result = content.import_canned(campaign, form.canned_file.data.read(), current_user)
    except content.ContentError as error:
        return canned_refused(campaign, error)
    added = f"{result.added} canned {'response' if result.added == 1 else 'responses'} added."
    problems = " ".join(f"Line {line} not imported: {problem}" for line, problem in result.errors)
    return canned_changed(campaign, f"{added} {problems}".strip())


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
    contact: Contact,
    message: str = "",
    error: bool = False,
    follow_up: int | None = None,
) -> ResponseReturnValue:
    """JSON for the page's script (the contact's tags, answers and questions now, and the
    script after the answer just recorded, filled in), else a redirect (which, for a recorded
    answer, puts its script in the reply box)."""
    if wants_json():
        db.session.expire_all()
        tools = contact_tools(contact)
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
            "survey_html": render_template(
                "inbox/_survey.html", contact=contact, tools=tools, token=csrf_token()
            ),
            "scripts": tools.scripts.get(follow_up, []) if follow_up else [],
        }
        return jsonify(body), 400 if error else 200
    if message:
        flash(message, "error" if error else "success")
    if follow_up and not error:
        return redirect(url_for("inbox.conversation", contact_id=contact.id, script=follow_up))
    return redirect(url_for("inbox.conversation", contact_id=contact.id))


@bp.post("/texting/conversations/<int:contact_id>/answers")
@login_required
def record_answer(contact_id: int) -> ResponseReturnValue:
    """Set or clear (no choice) the contact's answer to one question; the script after the
    new answer comes back filled in, for the volunteer to check and send."""
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
    if answer is None:
        return back_to_conversation(contact, gettext("Answer cleared."))
    return back_to_conversation(contact, gettext("Answer saved."), follow_up=answer.choice_id)


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
