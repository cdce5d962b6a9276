"""A campaign's content beyond the first message: the script's tree of questions and the
scripts after each answer, canned responses, and tags.

Plain functions with no Flask imports beyond the database session. Functions that change
something add an audit entry in the caller's transaction and leave the commit to the caller.
A refused change raises `ContentError`, whose text is meant for the person who asked.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, scoped_session, selectinload

from gotv.db import db, execute_core
from gotv.models import (
    Campaign,
    CannedResponse,
    Contact,
    ContactTag,
    SurveyAnswer,
    SurveyChoice,
    SurveyQuestion,
    Tag,
    User,
    tag_key,
    utcnow,
)
from gotv.people import audit
from gotv.texting import texts

QUESTION_MAX = 300
CHOICE_MAX = 100
TITLE_MAX = 100
BODY_MAX = 1600
TAG_MAX = 60
SCRIPT_WORDINGS_MAX = 5  # alternative wordings of the script after one answer
CANNED_IMPORT_MAX_ROWS = 500
CANNED_IMPORT_MAX_BYTES = 1024 * 1024

AnySession = Session | scoped_session[Any]


class ContentError(Exception):
    """The change was refused; `str(error)` says why."""


# --- Survey questions: the script's tree -----------------------------------------------------
#
# A campaign's script is a tree (Spoke's interaction steps): the first message
# (`Campaign.script`), then its top-level questions; each choice may carry the script that
# follows that answer (alternative wordings) and questions of its own, asked only after it.


def questions(campaign: Campaign, *, include_retired: bool = False) -> list[SurveyQuestion]:
    """The campaign's questions in tree order: each question, then (depth first) the questions
    that follow each of its choices; retired ones, and what follows them, only when asked for."""
    query = select(SurveyQuestion).where(SurveyQuestion.campaign_id == campaign.id)
    query = query.options(selectinload(SurveyQuestion.choices))  # one query for every choice
    rows = list(db.session.scalars(query.order_by(SurveyQuestion.position, SurveyQuestion.id)))
    found = Tree.of(rows)
    return [q for q, _depth in found.walk() if include_retired or not found.retired_path(q)]


@dataclass
class Tree:
    """Questions by the choice they follow (None: the top), siblings retired last."""

    after: dict[int | None, list[SurveyQuestion]] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[SurveyQuestion]) -> Tree:
        tree = cls()
        for question in sorted(rows, key=lambda q: (q.retired_at is not None, q.position, q.id)):
            tree.after.setdefault(question.parent_choice_id, []).append(question)
        return tree

    @property
    def top(self) -> list[SurveyQuestion]:
        return self.after.get(None, [])

    def following(self, choice_id: int) -> list[SurveyQuestion]:
        return self.after.get(choice_id, [])

    def walk(
        self, parent: int | None = None, depth: int = 0
    ) -> Iterator[tuple[SurveyQuestion, int]]:
        """(question, depth) in tree order from the questions after `parent`."""
        for question in self.after.get(parent, []):
            yield question, depth
            for choice in question.choices:
                yield from self.walk(choice.id, depth + 1)

    def retired_path(self, question: SurveyQuestion) -> bool:
        """True when the question or one it follows is retired (volunteers no longer see it)."""
        return any(each.retired_at is not None for each in self.lineage(question))

    def lineage(self, question: SurveyQuestion) -> list[SurveyQuestion]:
        """The question and those it follows, up to the top (a campaign has a few dozen)."""
        by_choice = {c.id: q for qs in self.after.values() for q in qs for c in q.choices}
        line = [question]
        while line[-1].parent_choice_id is not None and line[-1].parent_choice_id in by_choice:
            line.append(by_choice[line[-1].parent_choice_id])
        return line


def tree(campaign: Campaign) -> Tree:
    """Every question of the campaign (retired too), for the builder."""
    query = (
        select(SurveyQuestion)
        .where(SurveyQuestion.campaign_id == campaign.id)
        .options(selectinload(SurveyQuestion.choices))
    )
    return Tree.of(list(db.session.scalars(query)))


@dataclass(frozen=True)
class Choice:
    id: int
    label: str
    scripts: tuple[str, ...] = ()  # the script that follows this answer, in its wordings


@dataclass(frozen=True)
class Question:
    """A question as volunteers answer it (organizers edit the ORM's SurveyQuestion)."""

    id: int
    text: str
    choices: list[Choice]
    parent_choice_id: int | None = None


@dataclass(frozen=True)
class Step:
    """A question on a contact's path: how deep, after which answer, and its answer if any."""

    question: Question
    depth: int
    after: str  # the label of the answer it follows ("" for a top-level question)
    answer: Choice | None


@dataclass(frozen=True)
class Survey:
    """The questions volunteers see, by the choice they follow (None: the top)."""

    after: dict[int | None, list[Question]]

    def __bool__(self) -> bool:
        return bool(self.after.get(None))

    def path(self, answers: dict[int, int]) -> list[Step]:
        """The questions to show for a contact with these answers (question id -> choice id):
        every top-level question and, after each answer, the questions that follow it."""
        steps: list[Step] = []

        def visit(parent: int | None, depth: int, after: str) -> None:
            for question in self.after.get(parent, []):
                chosen = next(
                    (c for c in question.choices if c.id == answers.get(question.id)), None
                )
                steps.append(Step(question, depth, after, chosen))
                if chosen is not None:
                    visit(chosen.id, depth + 1, chosen.label)

        visit(None, 0, "")
        return steps

    def choice(self, choice_id: int) -> Choice | None:
        for questions_after in self.after.values():
            for question in questions_after:
                for each in question.choices:
                    if each.id == choice_id:
                        return each
        return None


def survey(campaign: Campaign) -> Survey:
    """The campaign's questions still asked, each with its choices and their scripts, in
    order: one query of plain rows (every conversation page shows them). Questions that follow
    a retired one are left out with it."""
    found: dict[int, Question] = {}
    for question_id, text, parent, choice_id, label, scripts in execute_core(
        _SURVEY, {"campaign": campaign.id}
    ):
        question = found.setdefault(question_id, Question(question_id, text, [], parent))
        if choice_id is not None:
            question.choices.append(Choice(choice_id, label, tuple(scripts or ())))
    after: dict[int | None, list[Question]] = {}
    for question in found.values():
        after.setdefault(question.parent_choice_id, []).append(question)
    reachable: dict[int | None, list[Question]] = {}

    def keep(parent: int | None) -> None:
        for question in after.get(parent, []):
            reachable.setdefault(parent, []).append(question)
            for each in question.choices:
                keep(each.id)

    keep(None)
    return Survey(reachable)


_SURVEY = (
    select(
        SurveyQuestion.id,
        SurveyQuestion.text,
        SurveyQuestion.parent_choice_id,
        SurveyChoice.id,
        SurveyChoice.label,
        SurveyChoice.scripts,
    )
    .outerjoin(SurveyChoice, SurveyChoice.question_id == SurveyQuestion.id)
    .where(SurveyQuestion.campaign_id == bindparam("campaign"), SurveyQuestion.retired_at.is_(None))
    .order_by(SurveyQuestion.position, SurveyQuestion.id, SurveyChoice.position, SurveyChoice.id)
)


def clean_text(text: str, limit: int, what: str) -> str:
    """`text` stripped; :raise ContentError: when empty or longer than `limit`."""
    text = text.strip()
    if not text:
        raise ContentError(f"The {what} cannot be empty.")
    if len(text) > limit:
        raise ContentError(f"The {what} can be at most {limit} characters.")
    return text


def choice_labels(lines: str) -> list[str]:
    """One choice per non-blank line, duplicates (ignoring case) dropped."""
    labels: dict[str, str] = {}
    for line in lines.splitlines():
        if line.strip():
            label = clean_text(line, CHOICE_MAX, "choice")
            labels.setdefault(label.casefold(), label)
    return list(labels.values())


def siblings(question: SurveyQuestion) -> list[SurveyQuestion]:
    """The questions still asked after the same answer (or at the top), in order."""
    return list(
        db.session.scalars(
            select(SurveyQuestion)
            .where(
                SurveyQuestion.campaign_id == question.campaign_id,
                SurveyQuestion.retired_at.is_(None),
                SurveyQuestion.parent_choice_id.is_(None)
                if question.parent_choice_id is None
                else SurveyQuestion.parent_choice_id == question.parent_choice_id,
            )
            .order_by(SurveyQuestion.position, SurveyQuestion.id)
        )
    )


def add_question(
    campaign: Campaign,
    text: str,
    choices: str,
    user: User,
    after: SurveyChoice | None = None,
) -> SurveyQuestion:
    """A new question with its choices (one per line), last among the questions asked at the
    top, or after the answer `after` (a choice of one of the campaign's questions)."""
    text = clean_text(text, QUESTION_MAX, "question")
    labels = choice_labels(choices)
    if len(labels) < 2:
        raise ContentError("A question needs at least two choices, one per line.")
    if after is not None and after.question.campaign_id != campaign.id:
        raise ContentError("That answer is not part of this campaign.")
    parent = None if after is None else after.id
    last = db.session.scalar(
        select(func.max(SurveyQuestion.position)).where(
            SurveyQuestion.campaign_id == campaign.id,
            SurveyQuestion.parent_choice_id.is_(None)
            if parent is None
            else SurveyQuestion.parent_choice_id == parent,
        )
    )
    question = SurveyQuestion(
        campaign_id=campaign.id, text=text, position=(last or 0) + 1, parent_choice_id=parent
    )
    db.session.add(question)
    db.session.flush()
    question.choices = [
        SurveyChoice(label=label, position=position, scripts=[])
        for position, label in enumerate(labels, start=1)
    ]
    details: dict[str, Any] = {"question_id": question.id, "text": text, "choices": labels}
    if after is not None:
        details.update(
            after_choice_id=after.id, after=after.label, after_question=after.question.text
        )
    audit.record(
        campaign.organization_id,
        "survey_question_added",
        f"campaign {campaign.id}",
        user and user.id,
        **details,
    )
    db.session.flush()
    return question


def edit_question(question: SurveyQuestion, text: str, user: User) -> None:
    old, question.text = question.text, clean_text(text, QUESTION_MAX, "question")
    audit.record(
        question.campaign.organization_id,
        "survey_question_edited",
        f"campaign {question.campaign_id}",
        user and user.id,
        question_id=question.id,
        old=old,
        new=question.text,
    )


def move(rows: list[Any], row: Any, step: int) -> bool:
    """Swap `row` with its neighbour `step` (-1 up, +1 down) in `rows`, renumbering them all.

    :return: False when `row` is already first (or last) and nothing moved.
    """
    if row not in rows:  # a retired question keeps its place
        return False
    index = rows.index(row)
    target = index + step
    if not 0 <= target < len(rows):
        return False
    rows[index], rows[target] = rows[target], rows[index]
    for position, each in enumerate(rows, start=1):
        each.position = position
    return True


def move_question(question: SurveyQuestion, step: int, user: User) -> None:
    """Move the question up or down among those asked at the same place in the tree."""
    if move(siblings(question), question, step):
        audit.record(
            question.campaign.organization_id,
            "survey_question_moved",
            f"campaign {question.campaign_id}",
            user and user.id,
            question_id=question.id,
            text=question.text,
            step=step,
        )


def answer_count(*conditions: ColumnElement[bool]) -> int:
    return db.session.scalar(select(func.count()).select_from(SurveyAnswer).where(*conditions)) or 0


def subtree(question: SurveyQuestion) -> list[SurveyQuestion]:
    """The question and every question after one of its answers, in tree order."""
    found = [question]
    for each in found:  # grows while it is walked: breadth first
        choice_ids = [choice.id for choice in each.choices]
        if choice_ids:
            found += db.session.scalars(
                select(SurveyQuestion)
                .where(SurveyQuestion.parent_choice_id.in_(choice_ids))
                .order_by(SurveyQuestion.position, SurveyQuestion.id)
            )
    return found


def delete_question(question: SurveyQuestion, user: User) -> bool:
    """Delete a question nobody answered, with the questions after its answers; retire one
    that has answers (or whose following questions have), keeping them all.

    :return: True when deleted, False when retired.
    """
    questions_below = subtree(question)
    answered = answer_count(SurveyAnswer.question_id.in_([q.id for q in questions_below]))
    audit.record(
        question.campaign.organization_id,
        "survey_question_retired" if answered else "survey_question_deleted",
        f"campaign {question.campaign_id}",
        user and user.id,
        question_id=question.id,
        text=question.text,
        answers=answered,
        following=len(questions_below) - 1,
    )
    if answered:
        question.retired_at = utcnow()
        return False
    delete_questions(questions_below)
    return True


def delete_questions(rows: list[SurveyQuestion]) -> None:
    """Delete questions (and their choices), those deepest in the tree first, so no question
    is left after a deleted answer."""
    for each in reversed(rows):
        db.session.delete(each)  # and its choices, by the relationship's cascade
        db.session.flush()


def add_choice(question: SurveyQuestion, label: str, user: User) -> SurveyChoice:
    label = clean_text(label, CHOICE_MAX, "choice")
    if any(choice.label.casefold() == label.casefold() for choice in question.choices):
        raise ContentError(f"“{label}” is already a choice.")
    choice = SurveyChoice(
        label=label,
        position=max([0, *(choice.position for choice in question.choices)]) + 1,
        scripts=[],
    )
    question.choices.append(choice)
    db.session.flush()
    audit.record(
        question.campaign.organization_id,
        "survey_choice_added",
        f"campaign {question.campaign_id}",
        user and user.id,
        question_id=question.id,
        question=question.text,
        choice_id=choice.id,
        label=label,
    )
    return choice


def rename_choice(choice: SurveyChoice, label: str, user: User) -> None:
    """Rename a choice; answers that chose it keep it, under the new label."""
    label = clean_text(label, CHOICE_MAX, "choice")
    if any(
        other.id != choice.id and other.label.casefold() == label.casefold()
        for other in choice.question.choices
    ):
        raise ContentError(f"“{label}” is already a choice.")
    old, choice.label = choice.label, label
    audit.record(
        choice.question.campaign.organization_id,
        "survey_choice_renamed",
        f"campaign {choice.question.campaign_id}",
        user and user.id,
        question_id=choice.question_id,
        question=choice.question.text,
        choice_id=choice.id,
        old=old,
        new=choice.label,
    )


def move_choice(choice: SurveyChoice, step: int, user: User) -> None:
    if move(list(choice.question.choices), choice, step):
        audit.record(
            choice.question.campaign.organization_id,
            "survey_choice_moved",
            f"campaign {choice.question.campaign_id}",
            user and user.id,
            question_id=choice.question_id,
            choice_id=choice.id,
            label=choice.label,
            step=step,
        )


def delete_choice(choice: SurveyChoice, user: User) -> None:
    """Delete a choice nobody chose, with the questions after it (if nobody answered them).

    :raise ContentError: when contacts chose it (rename it instead), answered a question after
        it, or it is one of two.
    """
    chosen = answer_count(SurveyAnswer.choice_id == choice.id)
    if chosen:
        raise ContentError(
            f"{chosen} {'contact' if chosen == 1 else 'contacts'} chose “{choice.label}”: "
            "rename it instead, so their answers stay readable."
        )
    question = choice.question
    if len(question.choices) <= 2:
        raise ContentError("A question needs at least two choices.")
    following = [
        below
        for top in db.session.scalars(
            select(SurveyQuestion).where(SurveyQuestion.parent_choice_id == choice.id)
        )
        for below in subtree(top)
    ]
    if following and answer_count(SurveyAnswer.question_id.in_([q.id for q in following])):
        raise ContentError(
            f"Questions after “{choice.label}” have answers: delete those questions first "
            "(they are retired, keeping their answers)."
        )
    audit.record(
        question.campaign.organization_id,
        "survey_choice_deleted",
        f"campaign {question.campaign_id}",
        user and user.id,
        question_id=question.id,
        question=question.text,
        choice_id=choice.id,
        label=choice.label,
        following=len(following),
    )
    delete_questions(following)
    question.choices.remove(choice)  # deleted as an orphan


def check_script(campaign: Campaign, script: str, what: str = "script") -> str:
    """A script stripped. :raise ContentError: when longer than BODY_MAX or when it uses merge
    fields the campaign's list cannot fill (named in the message)."""
    script = script.strip()
    if len(script) > BODY_MAX:
        raise ContentError(f"The {what} can be at most {BODY_MAX:,} characters.")
    unknown = texts.unknown_merge_fields(script, campaign.custom_field_names)
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        raise ContentError(f"Unknown merge field: {names}")
    return script


def save_scripts(choice: SurveyChoice, campaign: Campaign, scripts: list[str], user: User) -> None:
    """Set the script that follows an answer: its wordings in order, blank ones dropped (none:
    the volunteer writes the reply).

    :raise ContentError: for a wording too long or with unknown merge fields, or too many.
    """
    kept = [check_script(campaign, each, "follow-up script") for each in scripts if each.strip()]
    if len(kept) > SCRIPT_WORDINGS_MAX:
        raise ContentError(f"An answer can have at most {SCRIPT_WORDINGS_MAX} wordings.")
    if kept == list(choice.scripts or []):
        return
    choice.scripts = kept
    audit.record(
        campaign.organization_id,
        "branch_script_changed",
        f"campaign {campaign.id}",
        user and user.id,
        question_id=choice.question_id,
        question=choice.question.text,
        choice_id=choice.id,
        label=choice.label,
        scripts=kept,
    )


# --- Answers -------------------------------------------------------------------------------


def current_answers(contact: Contact) -> dict[int, int]:
    """The contact's answers: question id -> chosen choice id."""
    rows = execute_core(_ANSWERS, {"contact": contact.id})
    return {question_id: choice_id for question_id, choice_id in rows}


_ANSWERS = select(SurveyAnswer.question_id, SurveyAnswer.choice_id).where(
    SurveyAnswer.contact_id == bindparam("contact")
)


def contact_name(contact: Contact) -> str:
    return f"{contact.first_name} {contact.last_name}".strip() or contact.cell


def record_answer(
    contact: Contact, question_id: int, choice_id: int | None, user: User
) -> SurveyAnswer | None:
    """Set (or, with no choice, clear) the contact's answer to one of its campaign's questions.

    There is one current answer per contact and question; a new choice replaces the old one,
    with the new volunteer and time. The contact's path follows its answers: answers to
    questions after the choice it no longer has are cleared with it.

    :raise ContentError: for a question of another campaign, a retired one, one that follows
        an answer the contact did not give, or a choice the question does not offer.
    """
    question = db.session.get(SurveyQuestion, question_id)
    if question is None or question.campaign_id != contact.campaign_id:
        raise ContentError("That question is not part of this campaign.")
    if question.retired_at is not None:
        raise ContentError("That question was retired by an organizer.")
    answers = current_answers(contact)
    if question.parent_choice_id is not None:
        parent = db.session.get(SurveyChoice, question.parent_choice_id)
        if parent is None or answers.get(parent.question_id) != parent.id:
            after = f"“{parent.label}” to “{parent.question.text}”" if parent else "another answer"
            raise ContentError(f"This question follows {after}: record that answer first.")
    if choice_id is not None and choice_id not in {choice.id for choice in question.choices}:
        raise ContentError("That is not one of the question's choices.")
    answer = db.session.scalars(
        select(SurveyAnswer).where(
            SurveyAnswer.contact_id == contact.id, SurveyAnswer.question_id == question.id
        )
    ).first()
    organization_id = question.campaign.organization_id
    names = {
        "question_id": question.id,
        "question": question.text,
        "contact": contact_name(contact),
    }
    if answer is not None and answer.choice_id != choice_id:
        clear_branch(contact, question, answers, user)
    if choice_id is None:
        if answer is not None:
            db.session.delete(answer)
            audit.record(
                organization_id,
                "survey_answer_cleared",
                f"contact {contact.id}",
                user and user.id,
                **names,
            )
        return None
    if answer is None:
        answer = SurveyAnswer(contact_id=contact.id, question_id=question.id, choice_id=choice_id)
        db.session.add(answer)
    answer.choice_id, answer.user_id, answer.answered_at = choice_id, user.id, utcnow()
    label = next(choice.label for choice in question.choices if choice.id == choice_id)
    audit.record(
        organization_id,
        "survey_answer_recorded",
        f"contact {contact.id}",
        user and user.id,
        **names,
        choice_id=choice_id,
        choice=label,
    )
    db.session.flush()
    return answer


def clear_branch(
    contact: Contact, question: SurveyQuestion, answers: dict[int, int], user: User
) -> None:
    """Clear the contact's answers to the questions after the question's old answer."""
    old = answers.get(question.id)
    below = [
        each
        for top in db.session.scalars(
            select(SurveyQuestion).where(SurveyQuestion.parent_choice_id == old)
        )
        for each in subtree(top)
        if each.id in answers
    ]
    if not below:
        return
    db.session.execute(
        delete(SurveyAnswer).where(
            SurveyAnswer.contact_id == contact.id,
            SurveyAnswer.question_id.in_([each.id for each in below]),
        )
    )
    for each in below:
        audit.record(
            question.campaign.organization_id,
            "survey_answer_cleared",
            f"contact {contact.id}",
            user and user.id,
            question_id=each.id,
            question=each.text,
            contact=contact_name(contact),
            because=f"the answer to “{question.text}” changed",
        )


def follow_up(survey_: Survey, choice_id: int, contact: Contact, texter: User) -> list[str]:
    """The script after the answer, each wording filled in for this contact and volunteer."""
    chosen = survey_.choice(choice_id)
    if chosen is None:
        return []
    return [texts.render(script, contact, texter) for script in chosen.scripts]


@dataclass(frozen=True)
class ChoiceCount:
    label: str
    count: int


@dataclass(frozen=True)
class QuestionResult:
    """A question's answers counted per choice, in the choices' order, and where it sits in
    the tree: `depth` below the top, after the answer `after` ("" at the top)."""

    text: str
    retired: bool
    choices: list[ChoiceCount] = field(default_factory=list)
    depth: int = 0
    after: str = ""
    id: int = 0

    @property
    def total(self) -> int:
        return sum(choice.count for choice in self.choices)

    @property
    def largest(self) -> int:
        return max([0, *(choice.count for choice in self.choices)])


def survey_results(session: AnySession, campaign: Campaign) -> list[QuestionResult]:
    """Every question of the campaign in tree order (retired ones last among their siblings)
    with its answers per choice.

    One GROUP BY over the answers of these questions, read from
    `ix_survey_answer_question_choice` without touching the answer rows.
    """
    rows = list(
        session.scalars(
            select(SurveyQuestion)
            .where(SurveyQuestion.campaign_id == campaign.id)
            .options(selectinload(SurveyQuestion.choices))
        )
    )
    if not rows:
        return []
    counts = dict(
        session.execute(
            select(SurveyAnswer.choice_id, func.count())
            .where(SurveyAnswer.question_id.in_([question.id for question in rows]))
            .group_by(SurveyAnswer.question_id, SurveyAnswer.choice_id)
        ).all()
    )
    questions_tree = Tree.of(rows)
    label_of = {choice.id: (choice.label, q.text) for q in rows for choice in q.choices}
    results = []
    for question, depth in questions_tree.walk():
        after = ""
        if question.parent_choice_id in label_of:
            label, parent_text = label_of[question.parent_choice_id]
            after = f"“{label}” to “{parent_text}”"
        results.append(
            QuestionResult(
                question.text,
                questions_tree.retired_path(question),
                [
                    ChoiceCount(choice.label, counts.get(choice.id, 0))
                    for choice in question.choices
                ],
                depth,
                after,
                question.id,
            )
        )
    return results


@dataclass(frozen=True)
class Given:
    """A contact's answer to a question: the choice, its label, and when."""

    choice_id: int
    label: str
    answered_at: datetime


def answers_given(session: AnySession, contact_ids: list[int]) -> dict[int, dict[int, Given]]:
    """Per contact id: question id -> its answer (one query for a page of contacts)."""
    rows = session.execute(
        select(
            SurveyAnswer.contact_id,
            SurveyAnswer.question_id,
            SurveyAnswer.choice_id,
            SurveyChoice.label,
            SurveyAnswer.answered_at,
        )
        .join(SurveyChoice, SurveyChoice.id == SurveyAnswer.choice_id)
        .where(SurveyAnswer.contact_id.in_(contact_ids))
    )
    given: dict[int, dict[int, Given]] = {}
    for contact_id, question_id, choice_id, label, answered_at in rows:
        given.setdefault(contact_id, {})[question_id] = Given(choice_id, label, answered_at)
    return given


def path_labels(ordered: list[SurveyQuestion]) -> Callable[[Sequence[str | None]], str]:
    """For exports: a function from a contact's answer labels (one per question of `ordered`,
    in its order; None when unanswered) to the path it took, "Question: Answer › ...",
    following the tree from the top through each answer given.

    The tree is read once into plain tuples: the function runs once per exported row.
    """
    position = {question.id: n for n, question in enumerate(ordered)}
    tree_ = Tree.of(ordered)
    Node = tuple[int, str, dict[str, list[Any]]]

    def node(question: SurveyQuestion) -> Node:
        after = {
            choice.label: [node(child) for child in tree_.following(choice.id)]
            for choice in question.choices
        }
        return (position[question.id], question.text, after)

    top = [node(question) for question in tree_.top]

    def path(labels: Sequence[str | None]) -> str:
        steps: list[str] = []
        todo = list(top)
        while todo:
            at, text, after = todo.pop(0)
            label = labels[at]
            if label is None:
                continue
            steps.append(f"{text}: {label}")
            todo = after.get(label, []) + todo
        return " › ".join(steps)

    return path


# --- Canned responses ----------------------------------------------------------------------


def canned_responses(campaign: Campaign) -> list[CannedResponse]:
    """The campaign's canned responses, by title."""
    return list(
        db.session.scalars(
            select(CannedResponse)
            .where(CannedResponse.campaign_id == campaign.id)
            .order_by(func.lower(CannedResponse.title), CannedResponse.id)
        )
    )


def canned_texts(campaign: Campaign, contact: Contact, texter: User) -> list[tuple[str, str]]:
    """The campaign's canned responses by title, each (title, text filled in for this contact
    and volunteer): one query of plain rows (every conversation page shows them)."""
    rows = execute_core(_CANNED_TEXTS, {"campaign": campaign.id})
    return [(title, texts.render(body, contact, texter)) for title, body in rows]


_CANNED_TEXTS = (
    select(CannedResponse.title, CannedResponse.body)
    .where(CannedResponse.campaign_id == bindparam("campaign"))
    .order_by(func.lower(CannedResponse.title), CannedResponse.id)
)


def check_canned(campaign: Campaign, title: str, body: str) -> tuple[str, str]:
    """The title and body stripped. :raise ContentError: when empty, too long, or when the body
    uses merge fields the campaign's list cannot fill (named in the message)."""
    title = clean_text(title, TITLE_MAX, "title")
    body = clean_text(body, BODY_MAX, "text")
    unknown = texts.unknown_merge_fields(body, campaign.custom_field_names)
    if unknown:
        names = ", ".join("{" + name + "}" for name in unknown)
        raise ContentError(f"Unknown merge field: {names}")
    return title, body


def add_canned(campaign: Campaign, title: str, body: str, user: User) -> CannedResponse:
    title, body = check_canned(campaign, title, body)
    response = CannedResponse(campaign_id=campaign.id, title=title, body=body)
    db.session.add(response)
    db.session.flush()
    audit.record(
        campaign.organization_id,
        "canned_response_added",
        f"campaign {campaign.id}",
        user and user.id,
        canned_response_id=response.id,
        title=title,
    )
    return response


def edit_canned(
    response: CannedResponse, campaign: Campaign, title: str, body: str, user: User
) -> None:
    response.title, response.body = check_canned(campaign, title, body)
    audit.record(
        campaign.organization_id,
        "canned_response_edited",
        f"campaign {campaign.id}",
        user and user.id,
        canned_response_id=response.id,
        title=response.title,
    )


def delete_canned(response: CannedResponse, campaign: Campaign, user: User) -> None:
    audit.record(
        campaign.organization_id,
        "canned_response_deleted",
        f"campaign {campaign.id}",
        user and user.id,
        canned_response_id=response.id,
        title=response.title,
    )
    db.session.delete(response)


@dataclass
class CannedImport:
    """What an import of canned responses did: how many were added, and each bad row's line."""

    added: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)


def import_canned(campaign: Campaign, data: bytes, user: User) -> CannedImport:
    """Add a canned response for each good row of a CSV with the columns title and body.

    Bad rows are skipped and reported by their line in the file; the good ones are added.

    :raise ContentError: when the file cannot be read at all (not UTF-8, no title/body header,
        too many rows).
    """
    rows = read_canned_csv(data)
    result = CannedImport()
    for line, title, body in rows:
        try:
            add_canned(campaign, title, body, user)
        except ContentError as error:
            result.errors.append((line, str(error)))
        else:
            result.added += 1
    return result


def read_canned_csv(data: bytes) -> list[tuple[int, str, str]]:
    """(line, title, body) for each non-blank row; the header names are matched ignoring case.

    :raise ContentError: naming the line of a row that cannot be read as CSV (a quote never
        closed would otherwise swallow the rows after it into one body).
    """
    if len(data) > CANNED_IMPORT_MAX_BYTES:
        raise ContentError("The file is too large for canned responses (1 MB at most).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ContentError("The file is not UTF-8 text: save it as “CSV UTF-8”.") from error
    # (A NUL says nothing, and PostgreSQL cannot store one in text.)
    records = numbered(csv.reader(io.StringIO(text.replace("\x00", ""), newline=""), strict=True))
    header = [name.strip().casefold() for name in next(records, (0, []))[1]]
    if "title" not in header or "body" not in header:
        raise ContentError("The file needs a header row with the columns title and body.")
    title_at, body_at = header.index("title"), header.index("body")
    rows: list[tuple[int, str, str]] = []
    for line, values in records:
        if not any(value.strip() for value in values):
            continue
        if len(rows) == CANNED_IMPORT_MAX_ROWS:
            raise ContentError(f"Import at most {CANNED_IMPORT_MAX_ROWS} canned responses at once.")
        padded = values + [""] * (len(header) - len(values))
        rows.append((line, padded[title_at], padded[body_at]))
    return rows


def numbered(reader: Any) -> Iterator[tuple[int, list[str]]]:
    """Each record of a csv reader with the line it starts on.

    :raise ContentError: naming the line of a record that cannot be read.
    """
    line = 0
    while True:
        start = line + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise ContentError(
                f"Line {start} cannot be read as CSV ({error}); nothing was imported: check "
                "its quotes."
            ) from error
        line = reader.line_num
        yield start, values


# --- Tags ----------------------------------------------------------------------------------


def organization_tags(organization_id: int) -> list[Tag]:
    return list(
        db.session.scalars(
            select(Tag).where(Tag.organization_id == organization_id).order_by(Tag.name_key)
        )
    )


def find_tag(organization_id: int, name: str) -> Tag | None:
    return db.session.scalars(
        select(Tag).where(Tag.organization_id == organization_id, Tag.name_key == tag_key(name))
    ).first()


def create_tag(organization_id: int, name: str, user: User) -> Tag:
    """A new tag. :raise ContentError: when the organization has one by that name (any case)."""
    name = clean_text(" ".join(name.split()), TAG_MAX, "tag name")
    if find_tag(organization_id, name) is not None:
        raise ContentError(f"There is already a tag “{name}”.")
    tag = Tag(organization_id=organization_id, name=name)
    try:
        with db.session.begin_nested():
            db.session.add(tag)
    except IntegrityError as error:  # created by someone else a moment ago
        raise ContentError(f"There is already a tag “{name}”.") from error
    audit.record(organization_id, "tag_created", f"tag {tag.id}", user and user.id, name=name)
    return tag


def tag_named(organization_id: int, name: str, user: User) -> Tag:
    """The organization's tag of that name (any case), created when it has none."""
    tag = find_tag(organization_id, name)
    return tag if tag is not None else create_tag(organization_id, name, user)


def rename_tag(tag: Tag, name: str, user: User) -> None:
    name = clean_text(" ".join(name.split()), TAG_MAX, "tag name")
    other = find_tag(tag.organization_id, name)
    if other is not None and other.id != tag.id:
        raise ContentError(f"There is already a tag “{other.name}”.")
    old, tag.name = tag.name, name
    audit.record(
        tag.organization_id, "tag_renamed", f"tag {tag.id}", user and user.id, old=old, new=name
    )


def delete_tag(tag: Tag, user: User) -> int:
    """Delete the tag and take it off every contact. :return: how many contacts had it."""
    result = db.session.execute(delete(ContactTag).where(ContactTag.tag_id == tag.id))
    removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    audit.record(
        tag.organization_id,
        "tag_deleted",
        f"tag {tag.id}",
        user and user.id,
        name=tag.name,
        contacts=removed,
    )
    db.session.delete(tag)
    return removed


@dataclass(frozen=True)
class TagChoice:
    """One of the organization's tags, as the contact tools show it."""

    id: int
    name: str


def tags_for(contact: Contact) -> tuple[list[TagChoice], list[TagChoice]]:
    """The tags the contact carries and the organization's others, each by name: one query."""
    carried: list[TagChoice] = []
    others: list[TagChoice] = []
    rows = execute_core(
        _TAGS_FOR, {"organization": contact.campaign.organization_id, "contact": contact.id}
    )
    for tag_id, name, on_contact in rows:
        (carried if on_contact else others).append(TagChoice(tag_id, name))
    return carried, others


_TAGS_FOR = (
    select(
        Tag.id,
        Tag.name,
        exists()
        .where(ContactTag.tag_id == Tag.id, ContactTag.contact_id == bindparam("contact"))
        .label("carried"),
    )
    .where(Tag.organization_id == bindparam("organization"))
    .order_by(Tag.name_key)
)


def contact_tags(contact: Contact) -> list[Tag]:
    return list(
        db.session.scalars(
            select(Tag)
            .join(ContactTag, ContactTag.tag_id == Tag.id)
            .where(ContactTag.contact_id == contact.id)
            .order_by(Tag.name_key)
        )
    )


def tag_contact(contact: Contact, tag: Tag, user: User) -> bool:
    """Put the tag on the contact (once). :return: False when it already had it."""
    if tag.organization_id != contact.campaign.organization_id:
        raise ContentError("That tag belongs to another organization.")
    if has_tag(contact, tag):
        return False
    try:
        with db.session.begin_nested():
            db.session.add(ContactTag(contact_id=contact.id, tag_id=tag.id, user_id=user.id))
    except IntegrityError:  # tagged by someone else a moment ago
        return False
    audit.record(
        tag.organization_id,
        "contact_tagged",
        f"contact {contact.id}",
        user and user.id,
        tag=tag.name,
    )
    return True


def untag_contact(contact: Contact, tag: Tag, user: User) -> bool:
    """Take the tag off the contact. :return: False when it did not have it."""
    result = db.session.execute(
        delete(ContactTag).where(ContactTag.contact_id == contact.id, ContactTag.tag_id == tag.id)
    )
    removed = result.rowcount  # type: ignore[attr-defined]
    if removed:
        audit.record(
            tag.organization_id,
            "contact_untagged",
            f"contact {contact.id}",
            user and user.id,
            tag=tag.name,
        )
    return bool(removed)


def has_tag(contact: Contact, tag: Tag) -> bool:
    return bool(
        db.session.scalar(
            select(exists().where(ContactTag.contact_id == contact.id, ContactTag.tag_id == tag.id))
        )
    )


# --- For exports and message review ----------------------------------------------------------


def tagged_with(tag_id: int) -> ColumnElement[bool]:
    """A SQL condition on Contact: it carries the tag (negate it for "without")."""
    return exists().where(ContactTag.contact_id == Contact.id, ContactTag.tag_id == tag_id)


def answered_with(choice_id: int) -> ColumnElement[bool]:
    """A SQL condition on Contact: its current answer is this choice."""
    return exists().where(
        SurveyAnswer.contact_id == Contact.id, SurveyAnswer.choice_id == choice_id
    )


def tags_by_contact(session: AnySession, contact_ids: list[int]) -> dict[int, list[str]]:
    """Tag names per contact id, alphabetical (contacts without tags are left out)."""
    rows = session.execute(
        select(ContactTag.contact_id, Tag.name)
        .join(Tag, Tag.id == ContactTag.tag_id)
        .where(ContactTag.contact_id.in_(contact_ids))
        .order_by(ContactTag.contact_id, Tag.name_key)
    )
    names: dict[int, list[str]] = {}
    for contact_id, name in rows:
        names.setdefault(contact_id, []).append(name)
    return names


def answers_by_contact(session: AnySession, contact_ids: list[int]) -> dict[int, dict[int, str]]:
    """Per contact id: question id -> the chosen choice's label."""
    rows = session.execute(
        select(SurveyAnswer.contact_id, SurveyAnswer.question_id, SurveyChoice.label)
        .join(SurveyChoice, SurveyChoice.id == SurveyAnswer.choice_id)
        .where(SurveyAnswer.contact_id.in_(contact_ids))
    )
    answers: dict[int, dict[int, str]] = {}
    for contact_id, question_id, label in rows:
        answers.setdefault(contact_id, {})[question_id] = label
    return answers
