"""Reading a voter's reply: the opt-out tiers, Twilio's own keywords, and a labelled corpus."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gotv.compliance import keywords
from gotv.compliance.keywords import Intent, classify

CORPUS = Path(__file__).parent / "data" / "replies.csv"
LABELS = {intent.value for intent in Intent}


# --- Tier 1: the whole reply is a keyword -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "sToP",
        " stop\n",
        "Stop.",
        "STOP!!!",
        "Stop 🛑",
        "STOPALL",
        "stop all",
        "UNSUBSCRIBE",
        "cancel",
        "End",
        "quit",
        "REVOKE",
        "optout",
        "opt out",
        "Opt-Out!",
        "unsub",
        "remove",
    ],
)
def test_twilio_and_fcc_keywords_opt_out(body: str) -> None:
    assert classify(body) == Intent.OPT_OUT


@pytest.mark.parametrize(
    "body",
    ["ALTO", "Parar", "para", "BASTA", "No más", "no mas", "Cancelar", "BAJA", "darme de baja"],
)
def test_spanish_keywords_opt_out(body: str) -> None:
    assert classify(body) == Intent.OPT_OUT


@pytest.mark.parametrize(
    "body",
    [
        "STOP STOP",
        "stop stop stop",
        "Stop, unsubscribe",
        "stop and unsubscribe",
        "stop please",
        "Please stop",
        "PLEASE STOP NOW",
        "stop thanks",
        "Stop it",
        "quit it",
        "STOOOOP",
        "Stopppp",
        "alto por favor",
        "ya basta",
        "Para ya",
        "Stop por favor",
    ],
)
def test_a_keyword_repeated_or_wrapped_in_politeness_still_opts_out(body: str) -> None:
    assert classify(body) == Intent.OPT_OUT


@pytest.mark.parametrize(
    "body",
    ["I already voted. STOP.", "STOP. Who is this", "Who is this?\nStop", "Ya voté. Basta."],
)
def test_a_keyword_standing_as_its_own_sentence_opts_out(body: str) -> None:
    assert classify(body) == Intent.OPT_OUT


@pytest.mark.parametrize("body", ["Cancel?", "Remove??", "ok stop", "no stop", "yes stop"])
def test_a_keyword_in_a_question_or_after_an_answer_is_only_flagged(body: str) -> None:
    assert classify(body) == Intent.POSSIBLE_OPT_OUT


def test_keyword_tables_hold_twilio_and_the_fcc_words() -> None:
    assert keywords.TWILIO_OPT_OUT <= keywords.OPT_OUT_KEYWORDS
    assert keywords.FCC_OPT_OUT <= keywords.OPT_OUT_KEYWORDS
    assert {"stop all", "alto", "no mas"} <= keywords.OPT_OUT_KEYWORDS


# --- Tier 2: a clear phrase anywhere in the reply ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "Stop texting me",
        "please stop messaging me!!",
        "Quit texting this number",
        "Stop sending me these texts",
        "Remove me from your list",
        "Please remove me. Thanks",
        "take me off your list",
        "Take me off the list please",
        "lose my number",
        "Wrong number",
        "sorry, you have the wrong number",
        "Don't text me",
        "do not text me again",
        "DO NOT CONTACT ME",
        "Can you not text me",
        "unsubscribe me",
        "opt me out",
        "I want to opt out",
        "How do I unsubscribe?",
        "No more texts please",
        "I don't want to receive any more messages",
        "I'm voting but it's my business. Stop texting me, this is the 4th one today.",
    ],
)
def test_a_clear_english_phrase_anywhere_opts_out(body: str) -> None:
    assert classify(body) == Intent.OPT_OUT


@pytest.mark.parametrize(
    "body",
    [
        "Deja de escribirme",
        "dejen de mandarme mensajes por favor",
        "No me escribas",
        "ya no me manden más mensajes",
        "No me mandes mensajes",
        "Número equivocado",
        "Se equivocó de número",
        "Bórrame de la lista",
        "Sácame de la lista",
        "Por favor borren mi número",
        "No quiero recibir mensajes",
        "Quiero darme de baja",
        "Please stop, ya no quiero mensajes",
    ],
)
def test_a_clear_spanish_phrase_anywhere_opts_out(body: str) -> None:
    assert classify(body) == Intent.OPT_OUT


@pytest.mark.parametrize(
    "body",
    [
        "don't stop texting me",
        "Please don't ever stop texting me",
        "I don't want you to stop texting me",
        "I never said remove me",
    ],
)
def test_a_negated_phrase_does_not_opt_out(body: str) -> None:
    assert classify(body) != Intent.OPT_OUT


# --- Tier 3: might be a request to stop, so the volunteer decides ------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "stpo",
        "sotp",
        "unsubcribe",
        "cancle",
        "leave me alone",
        "Not interested",
        "No thanks",
        "who is this? how did you get my number",
        "Who gave you my number",
        "f*** off",
        "fuck off",
        "go to hell",
        "This is spam",
        "Stop, who is this?",
        "I never signed up for this",
        "Why do you keep texting me",
        "Déjame en paz",
        "No me interesa",
        "¿De dónde sacaron mi número?",
        "Vete al diablo",
        "no me molesten",
    ],
)
def test_a_reply_that_might_ask_to_stop_is_flagged_for_the_volunteer(body: str) -> None:
    assert classify(body) == Intent.POSSIBLE_OPT_OUT


@pytest.mark.parametrize(
    "body",
    [
        "I'll stop by the polls",
        "don't stop texting me",
        "Stopping by later",
        "Stop by at noon?",
        "I can't stop thinking about the election",
        "the bus stop is by the school",
        "end of the day works",
        "I quit my job so I can volunteer",
        "cancel my ride? no I'm still going",
        "Nothing will stop me from voting",
        "Non-stop rain today, still voting",
        "who is this",
        "Yes I'll vote!",
        "Where do I vote?",
        "Already voted",
        "Voy a parar en la casilla antes del trabajo",
        "¿Para cuándo es la elección?",
        "No me escribiste la dirección",
        "",
        "   ",
        "🗳️",
    ],
)
def test_an_ordinary_reply_is_neither_opted_out_nor_flagged(body: str) -> None:
    assert classify(body) == Intent.NONE


def test_explain_names_the_rule_that_decided() -> None:
    assert keywords.explain("STOP").rule == "keyword"
    assert keywords.explain("please stop texting me").rule == "stop_contacting"
    assert keywords.explain("wrong number").rule == "wrong_number"
    assert keywords.explain("leave me alone").rule == "leave_me_alone"


# --- Opt in, help, yes ------------------------------------------------------------------------


@pytest.mark.parametrize("body", ["START", " start! ", "Unstop"])
def test_start_and_unstop_opt_back_in(body: str) -> None:
    assert classify(body) == Intent.OPT_IN and keywords.is_opt_in(body)


@pytest.mark.parametrize("body", ["YES", "yes", "start now please", "I'll start canvassing"])
def test_yes_and_sentences_with_start_are_not_opt_in(body: str) -> None:
    assert not keywords.is_opt_in(body)


@pytest.mark.parametrize("body", ["HELP", "help!", "Info", "AYUDA", "ayuda", "Información"])
def test_help_info_and_ayuda_ask_for_help(body: str) -> None:
    assert classify(body) == Intent.HELP


@pytest.mark.parametrize("body", ["help me find my polling place", "more info on the judges?"])
def test_a_question_mentioning_help_goes_to_the_volunteer(body: str) -> None:
    assert classify(body) == Intent.NONE


@pytest.mark.parametrize("body", ["YES", "yes", " Yes! ", "Sí", "si", "SI."])
def test_a_whole_message_yes_or_si_is_yes(body: str) -> None:
    assert keywords.is_yes(body)


@pytest.mark.parametrize("body", ["yes I'll vote", "Yes, already voted", "sí, voy a votar", "y"])
def test_a_yes_inside_a_sentence_is_not_yes(body: str) -> None:
    assert not keywords.is_yes(body)


def test_yes_alone_is_no_intent_since_it_usually_answers_will_you_vote() -> None:
    assert classify("YES") == Intent.NONE


# --- Twilio's own keyword handling ------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        "sToP",
        " STOP\n",
        "\tStopAll ",
        "unsubscribe",
        "CANCEL",
        "end",
        "QUIT",
        "revoke",
        "OptOut",
        "START",
        "yes",
        "UNSTOP",
        "help",
        "INFO",
    ],
)
def test_twilio_answers_its_default_keywords_alone_in_any_case(body: str) -> None:
    assert keywords.twilio_answers(body)


@pytest.mark.parametrize(
    "body",
    [
        "Stop.",
        "STOP!",
        "Stop 🛑",
        "stop all",
        "opt out",
        "opt-out",
        "stop please",
        "STOP STOP",
        "ALTO",
        "AYUDA",
        "remove",
        "ſtop",  # casefolds to "stop"; Twilio's folding is undocumented, so assume not
        "\u00a0STOP",  # a non-breaking space is not the whitespace Twilio is known to trim
        "",
    ],
)
def test_twilio_does_not_answer_anything_else(body: str) -> None:
    assert not keywords.twilio_answers(body)


# --- Backwards compatibility ------------------------------------------------------------------


def test_is_opt_out_is_exactly_an_automatic_opt_out() -> None:
    assert keywords.is_opt_out("stop texting me")
    assert not keywords.is_opt_out("leave me alone")
    assert not keywords.is_opt_out("START")


def test_normalize_strips_case_accents_punctuation_emoji_and_apostrophes() -> None:
    assert keywords.normalize("  No  MÁS!! 🛑 ") == "no mas"
    assert keywords.normalize("Don’t text me") == "dont text me"
    assert keywords.normalize("- Opt-Out -") == "opt-out"


# --- The labelled corpus ----------------------------------------------------------------------


def load_corpus() -> list[tuple[str, str]]:
    with CORPUS.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


def precision_recall(predicted: list[bool], actual: list[bool]) -> tuple[float, float]:
    hits = sum(p and a for p, a in zip(predicted, actual, strict=True))
    precision = hits / sum(predicted) if any(predicted) else 1.0
    recall = hits / sum(actual) if any(actual) else 1.0
    return precision, recall


def test_the_corpus_is_big_enough_and_well_formed() -> None:
    corpus = load_corpus()
    texts = [text for text, _ in corpus]

    assert len(corpus) >= 320
    assert {label for _, label in corpus} == LABELS
    assert len(set(texts)) == len(texts)


def test_the_corpus_is_read_with_high_precision_and_recall() -> None:
    corpus = load_corpus()
    intents = [classify(text) for text, _ in corpus]
    labels = [label for _, label in corpus]
    flagged = {Intent.OPT_OUT, Intent.POSSIBLE_OPT_OUT}

    auto = precision_recall(
        [intent == Intent.OPT_OUT for intent in intents], [label == "opt_out" for label in labels]
    )
    flag = precision_recall(
        [intent in flagged for intent in intents], [label in flagged for label in labels]
    )
    wrongly_opted_out = [
        text
        for (text, label), intent in zip(corpus, intents, strict=True)
        if intent == Intent.OPT_OUT and label != "opt_out"
    ]
    print(
        f"\ncorpus: {len(corpus)} replies\n"
        f"auto opt-out   precision {auto[0]:.3f}  recall {auto[1]:.3f}\n"
        f"flag or opt-out precision {flag[0]:.3f}  recall {flag[1]:.3f}"
    )

    assert wrongly_opted_out == []
    assert auto[0] == 1.0
    assert auto[1] >= 0.95
    assert flag[1] >= 0.95


def test_opt_in_and_help_in_the_corpus_are_read_exactly() -> None:
    wrong = [
        (text, label, classify(text).value)
        for text, label in load_corpus()
        if label in ("opt_in", "help") and classify(text) != label
    ]

    assert wrong == []
