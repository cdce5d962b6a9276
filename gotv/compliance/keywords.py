"""Reading a voter's reply: opt out, maybe opt out, opt back in, ask for help, or none of these.

We match on our own rather than trusting Twilio. Twilio only blocks single-word keywords, so it
misses the FCC's "opt out", the common "stop all" and every sentence (research/compliance.md §1.2,
§2). Every rule runs on `normalize(body)`: trimmed, whitespace collapsed, punctuation and emoji
dropped, apostrophes removed ("don't" -> "dont"), case-folded, accents stripped ("No más" ->
"no mas").

Before the rules read a reply, swearing inside it is left out ("stop fucking texting me" is
"stop texting me", `_INTENSIFIER`) and a stop sign beside words is the word "stop" ("🛑
please"), unless the words already say it.

`classify` decides in this order; the first step that matches wins.

1. **Exact keyword -> OPT_OUT.** The whole reply is one of `OPT_OUT_KEYWORDS`: Twilio's defaults
   (STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT), the FCC's per-se words
   (stop, quit, end, revoke, opt out, cancel, unsubscribe), "stop all", "remove" (compliance.md
   §2 recommendation) and common Spanish (ALTO, PARAR, PARA, BASTA, NO MAS, CANCELAR, BAJA, ...).
   Also OPT_OUT, because a keyword's meaning does not change when it is:
     * repeated or chained: "STOP STOP", "stop, unsubscribe", "stop and unsubscribe";
     * wrapped in politeness or urgency (`POLITE_WORDS`): "stop please", "please stop",
       "STOP NOW", "para por favor", "ya basta", "stop thanks", "just stop", "stop please and
       thank you";
     * shouted with repeated letters: "STOOOOP", "Stopppp" (letters are de-duplicated on both
       sides before comparing);
     * one of the idioms in `KEYWORD_IDIOMS`: "stop it", "stop this", "quit it", "párale".
     * restated (`POLITE_WORDS` again): "I said STOP", "STOP again", "for the last time STOP";
     * spelled out or disguised (`_is_disguised_keyword`): "S T O P", "s.t.o.p", "S-T-O-P",
       "st0p", "5TOP", "STOP1": separators out, look-alike digits read as letters, digits glued
       to the word dropped (a number standing apart, "para 2", keeps it from matching).
   Nothing else is stripped: "ok stop", "no stop", "yes stop" go to tier 3, because a word
   before the keyword may be answering something else.
   Refinements: a keyword reply ending in "?" opts out when the keyword can only mean stop
   (`UNAMBIGUOUS_KEYWORDS`: "STOP?", "Unsubscribe?") and is only flagged otherwise ("Cancel?",
   "Alto?" may ask what we mean); a *sentence of its own* that is a keyword ("I already voted.
   STOP.", "STOP. Who is this") opts out like the bare keyword, unless that sentence is a
   question; a reply of emoji alone opts out when it is the stop sign 🛑 and is flagged when it
   is a raised hand, a no-entry sign or a gesture of refusal, 🙅 or 👎 (`_explain_emoji`).

   *Then OPT_IN / HELP* (not an opt-out tier): the whole reply is START/UNSTOP
   (`OPT_IN_KEYWORDS`; YES is deliberately not here, see `is_yes`) or HELP/INFO/AYUDA
   (`HELP_KEYWORDS`). Checked after tier 1 so that nothing outranks a bare STOP.
2. **Clear phrase anywhere -> OPT_OUT** (`OPT_OUT_PHRASES`): "stop texting me", "remove me from
   your list", "take me off the list", "lose my number", "wrong number", "don't text me",
   "unsubscribe me", "no more texts", "deja de escribirme", "no me escribas", "número
   equivocado", "bórrame de la lista", ... A phrase does not count when a negation comes just
   before it (`NEGATED_BEFORE`): "don't stop texting me", "I don't want you to stop texting me".
   Phrases read "wrong number" misspelt one letter off ("wromg nunber") and digits inside words
   as letters ("st0p t3xting m3"). A request limited in time ("no more texts after 8pm") is not
   one of them, and a request taken back ("... lol jk", `RETRACTED`) is only flagged.
   Also tier 2: a stop word opening or closing the reply as a clause of its own, beside a
   reason to stop (`_has_keyword_with_reason`): "STOP, I already voted", "Not interested,
   stop", "Alto, ya voté". Without the clause break ("Stop I'm busy"), asked ("Stop? ..."), or
   with a stop word that may answer the volunteer ("Cancel, I already voted": the ride?), it is
   flagged instead.
3. **Looks like a request to stop -> POSSIBLE_OPT_OUT** (`POSSIBLE_OPT_OUT_PATTERNS`, plus the
   word "stop" outside the harmless uses in `HARMLESS_STOP`, plus a short reply that is a typo of
   a keyword, such as "stpo" or "unsubcribe"). Never automatic: the volunteer sees a flag and
   confirms with one click. Examples: "leave me alone", "not interested", "how did you get my
   number", "f*** off", "déjame en paz", "remove" or "stop" inside a sentence ("ok stop",
   "Stop, who is this?"). A negated "stop" ("I don't want you to stop") is not flagged.
   "wrong number" in any abbreviation ("wrong #", "wrng num"), restated demands ("I said stop",
   "how many times do I have to say stop") and blocking ("block this number", "Blocked") are
   tier 2 too. Also flagged: bare refusals (`BARE_REFUSALS`: "No", "Nope", "I'm good", "No
   sir", "Hard no", "Para nada"; refusal words with only thanks or a form of address),
   wrong-person signs ("This isn't Maria", "This is Mark, not Paul", "the wrong Jennifer", read
   from the capitalized name; "No Linda here", "Sarah's old number"), and replies saying the
   person is not a voter here (a business line, "I'm 16", "my kid's phone", "not a citizen",
   "I moved to Texas"), and a keyword as one clause of a longer reply.
4. Otherwise NONE. "I'll stop by the polls", "the bus stop is by the school", "end of the day
   works", "I quit my job so I can volunteer", "cancel my ride? no I'm still going" all land here.

`twilio_answers` is separate: it says whether Twilio's *default* keyword handling has already
replied (exact single word, case-insensitive, surrounding whitespace only), so that we do not
send a second confirmation (47 CFR 64.1200(a)(12) allows one).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

# --- Twilio's defaults (compliance.md §1.1). Matched by Twilio on the whole body, one word. ---
TWILIO_OPT_OUT = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
TWILIO_OPT_IN = frozenset({"start", "yes", "unstop"})
TWILIO_HELP = frozenset({"help", "info"})
TWILIO_KEYWORDS = TWILIO_OPT_OUT | TWILIO_OPT_IN | TWILIO_HELP

# --- The FCC's per-se revocation words, 47 CFR 64.1200(a)(10). "opt out" has a space, which
# Twilio cannot block, so only we catch it.
FCC_OPT_OUT = frozenset({"stop", "quit", "end", "revoke", "opt out", "cancel", "unsubscribe"})

# --- Spanish whole-message keywords. ALTO/PARAR/PARA/BASTA/NO MAS/CANCELAR are the ones carriers
# and platforms list; BAJA ("darme de baja") is how Spanish-language SMS lists say unsubscribe;
# FIN and DETENER are the literal "end"/"stop". "para" alone is the imperative "stop!".
SPANISH_OPT_OUT = frozenset(
    {
        "alto",
        "parar",
        "para",
        "pare",
        "paren",
        "basta",
        "no mas",
        "cancelar",
        "baja",
        "darme de baja",
        "dar de baja",
        "fin",
        "detener",
        "desuscribir",
        "desuscribirme",
    }
)

# Tier 1: the whole reply (after normalize) is one of these.
OPT_OUT_KEYWORDS = (
    TWILIO_OPT_OUT
    | FCC_OPT_OUT
    | SPANISH_OPT_OUT
    | frozenset(
        {
            "stop all",  # common; Telnyx lists it; Twilio cannot (space)
            "opt-out",  # normalize keeps an inner hyphen
            "unsub",  # common shorthand for unsubscribe
            "remove",  # compliance.md §2 recommends it in the exact tier
        }
    )
)
# Two-word idioms that mean exactly the keyword. "stop it"/"quit it" are imperatives to stop;
# "stop this" as a whole reply can only mean these texts.
KEYWORD_IDIOMS = frozenset(
    {"stop it", "stop this", "stop that", "quit it", "end it", "stop means stop"}
    # Mexican Spanish "párale", "párenle": "stop it".
    | {"parale", "parenle", "parele"}
)
# Keywords that mean only "stop", even asked as a question ("STOP?"): opted out. The others
# ("Cancel?", "End?", "Alto?", "Para?") may be asking what we mean, so they are only flagged.
UNAMBIGUOUS_KEYWORDS = frozenset(
    {"stop", "stop all", "stopall", "unsubscribe", "unsub", "opt out", "optout", "opt-out"}
)
# Words that may surround a keyword without changing what it asks. Deliberately no "ok", "yes",
# "no", "but": those may answer the volunteer's question rather than decorate the keyword.
POLITE_WORDS = (
    "please",
    "pls",
    "plz",
    "plez",
    "now",
    "right now",
    "immediately",
    "asap",
    "thanks",
    "thank you",
    "thanks anyway",
    "thank you anyway",
    "thx",
    "ty",
    "already",
    "just",
    "por favor",
    "porfa",
    "porfavor",
    "gracias",
    "ya",
    "ahora",
    # Restating a demand does not change it: "I said STOP", "STOP again", "for the last time".
    "again",
    "i said",
    "said",
    "i already said",
    "like i said",
    "i told you",
    "told you",
    "for the last time",
    "otra vez",
    "ya dije",
    "ya les dije",
    "te dije",
)

# Not opt-outs: Twilio lifts its block on START/UNSTOP; we lift ours too. YES is left to
# `is_yes`, because "yes" is the usual answer to "will you vote?" and must not mean "opt in"
# unless the number is already opted out.
OPT_IN_KEYWORDS = frozenset({"start", "unstop"})
HELP_KEYWORDS = frozenset({"help", "info", "ayuda", "informacion"})
YES_WORDS = frozenset({"yes", "si"})


class Intent(enum.StrEnum):
    OPT_OUT = "opt_out"  # opt out automatically
    POSSIBLE_OPT_OUT = "possible_opt_out"  # flag for the volunteer, one-click confirm
    OPT_IN = "opt_in"  # START / UNSTOP (re-subscribe)
    HELP = "help"  # HELP / INFO (and AYUDA)
    NONE = "none"


@dataclass(frozen=True)
class Verdict:
    """What a reply means and which rule said so (for the opt-out log's reason code)."""

    intent: Intent
    rule: str


def _words(*alternatives: str) -> str:
    return "(?:" + "|".join(alternatives) + ")"


# Verbs of contact, for "stop texting me", "don't text me" and Spanish "deja de escribirme".
_CONTACT_ING = _words(
    "texting",
    "txting",
    "txtng",
    "texing",
    "messaging",
    "msging",
    "sending",
    "contacting",
    "calling",
    "emailing",
    "bothering",
    "bugging",
    "spamming",
    "harassing",
    "hitting me up",
)
_CONTACT = _words("text", "txt", "message", "msg", "contact", "sms", "send", "email", "call")
_ME = _words("me", "us", "this number", "this phone", "my number", "my phone", "my cell", "here")
_TEXTS = _words("texts?", "txts?", "messages?", "msgs?", "sms", "texting", "spam", "mensajes?")
# Not the mail-ballot, absentee or voter lists: "remove my name from the mail list" is about
# voting, not about these texts.
_LIST = _words(
    r"(?:your|the|this|ur|that|these|all|any|ya ll|yall|ur)?\s*"
    r"(?!(?:mail|mailing|absentee|ballot|voter|voting|voters|early|waiting|email)\b)(?:\w+\s+)?"
    r"(?:lists?|contacts?|database|system|rolodex|roster|thread)",
    r"(?:your|ur|this)\s+mailing\s+list",
)
# A request limited in time ("no more texts after 8pm", "... today") asks for something other
# than an opt-out: a person looks.
_FOR_A_TIME = (
    r"(?!\s+(?:today|tonight|this week|this weekend|on|before|after|during|at|until|till|til"
    r"|past|in the)\b)"
)
# The nouns for these texts, which need no article: "stop messages", "stop w the texts".
_TEXT_NOUNS = _words("texts?", "txts?", "messages?", "msgs?", "sms", "spam")
_POLITE_TAIL = _words(
    *("please", "pls", "plz", "now", "thanks", "thank you", "thank u", "thx", "ty", "asap"),
    "right now",
)
# The end of the message, or a polite word, or a new clause: what may follow "remove me".
_END = rf"(?=\s*$|\s+{_POLITE_TAIL}\b|\s+(?:and|i|im|this|its|you|u|stop)\b)"
# What may close a short declaration without changing it: "blocked lol", "Blocked. Bye".
_SIGN_OFF = r"(?:\s+(?:lol|lmao|bye+|goodbye|now|k|ok))*"
_UNSUBSCRIBE = _words("unsubscribe", "unsub", "opt out", "optout", "opt-out")
_ES_DEJAR = _words("deja", "dejen", "deje", "dejes", "dejar", "dejaran", "dejaras", "dejara")
# The imperative and the subjunctive of "parar" ("paren de escribirme", "les pedí que pararan
# de escribirme"); not "para", which is also "for".
_ES_PARAR = _words("paren", "pare", "pares", "parale", "parenle", "pararan", "pararas", "parara")
_ES_CONTACT = _words(
    "escribirme",
    "escribir",
    "mandarme",
    "mandar mensajes",
    "enviarme",
    "enviar mensajes",
    "enviar",
    "textearme",
    "textear",
    "mensajearme",
    "contactarme",
    "molestarme",
    "molestar",
    "llamarme",
    # "dejen de chingar", "deja de fregar": "stop bugging (me)", as "dejen de molestar".
    "chingar",
    "chingarme",
    "fregar",
    "fregarme",
    "joder",
    "jodernos",
    "estar (?:molestando|chingando|fregando|jodiendo|escribiendo|mandando|enviando)",
)
_ES_REMOVE = _words(
    "borrar",
    "sacar",
    "quitar",
    "eliminar",
    "borra",
    "borrame",
    "borren",
    "borrenme",
    "borreme",
    "saca",
    "sacame",
    "saquen",
    "saquenme",
    "saqueme",
    "quita",
    "quitame",
    "quiten",
    "quitenme",
    "quiteme",
    "elimina",
    "eliminame",
    "eliminen",
    "eliminenme",
    "elimineme",
)
_ES_LIST = _words(
    r"(?:la|su|tu|sus|esta|esa|de la|de su)?\s*(?:lista|listas|base de datos|contactos|agenda)"
)

# Tier 2: phrases that ask to stop whatever surrounds them. Each is (rule name, pattern); the
# rule name goes to the opt-out log as the reason.
OPT_OUT_PHRASES: tuple[tuple[str, str], ...] = (
    # "stop texting me", "quit messaging this number", "stop bothering me", "please stop texting"
    ("stop_contacting", rf"\b(?:stop|quit|cease)\s+{_CONTACT_ING}\s+{_ME}\b"),
    ("stop_contacting", rf"\b(?:stop|quit|cease)\s+{_CONTACT_ING}(?:\s+{_POLITE_TAIL})*\s*$"),
    ("stop_contacting", rf"\b(?:stop|quit)\s+sending\s+(?:me\s+)?(?:these|this|{_TEXTS})\b"),
    # "stop these texts", "cancel the messages"
    ("stop_the_texts", rf"\b(?:stop|end|cancel)\s+(?:the|these|this|all|all the|your)\s+{_TEXTS}"),
    ("stop_the_texts", rf"\b(?:stop|end)\s+(?:with\s+|w\s+)?(?:the\s+|these\s+)?{_TEXT_NOUNS}\b"),
    # "please cease all communication", "stop all contact"
    (
        "stop_the_texts",
        r"\b(?:stop|end|cease|discontinue|halt)\s+(?:all\s+)?(?:further\s+)?"
        r"(?:communications?|contact)\b",
    ),
    # The formal "please discontinue texts to this number", "cease messaging me"
    (
        "stop_the_texts",
        r"\b(?:discontinue|cease|halt)\s+(?:the\s+|these\s+|this\s+|all\s+|your\s+)?"
        rf"(?:{_TEXTS}|{_CONTACT_ING})\b",
    ),
    # "remove me from your list", "take me off the list", "delete my number", "remove me please"
    (
        "remove_me",
        r"\b(?:remove|delete|take|drop|erase|scratch)\s+"
        rf"(?:me|my number|this number|my name|my info)\s+(?:from|off)(?: of)?\s+{_LIST}",
    ),
    (
        "remove_me",
        r"\b(?:remove|delete|erase)\s+(?:me|my number|this number|my info|my information"
        rf"|my contact info|my details|my data){_END}",
    ),
    ("remove_me", rf"\b(?:take|get)\s+me\s+off\s+{_LIST}"),
    # "Take me off.", "can you please remove me from this?"
    ("remove_me", rf"\b(?:take|get)\s+me\s+off{_END}"),
    (
        "remove_me",
        r"\b(?:remove|take|delete|drop|get)\s+me\s+(?:from|off)(?: of)?\s+"
        rf"(?:this|these|that|here|it|them|everything|all){_END}",
    ),
    ("remove_me", rf"\btake\s+(?:this|my|the)\s+number\s+off{_END}"),
    ("remove_me", rf"\b(?:how (?:do|can) i|i want to|i wanna|let me)\s+get\s+off\s+{_LIST}"),
    # "I want out of this list", "I want off your list"
    ("remove_me", rf"\b(?:i want|i wanna|let me|get me)\s+(?:out of|off(?: of)?)\s+{_LIST}"),
    (
        "remove_me",
        r"\b(?:lose|delete|del|forget|erase|remove)\s+(?:my|this)\s+"
        r"(?:number|phone number|cell|cell number)\b"
        r"(?!\s+(?:from|off|on)\s+(?:the\s+|my\s+)?(?:voter|voting|mail|absentee|ballot|registration))",
    ),
    # "I asked to be removed", "I want to be taken off"
    (
        "remove_me",
        r"\b(?:asked|want|wanted|like|need|wish)\s+to\s+be\s+"
        r"(?:removed|taken off|unsubscribed|opted out)\b",
    ),
    # "wrong number", "wrong #" (normalized to "number"), "wrng num", "wrong person" (and
    # misspellings one letter off, "wromg nunber", read as the words by `_spelled_right`)
    (
        "wrong_number",
        r"\b(?:wrong|wrng|wrog|worng|rong|incorrect)\s+(?:number|numbers|numb|num|nmbr|nbr|no"
        r"|phone|cell|contact)\b(?!\s+to\s+(?:ask|talk|speak|call|go)\b)",
    ),
    # "wrong person", "wrong guy"; not "we elected the wrong guy", "the wrong person won"
    (
        "wrong_number",
        r"(?<!\bfor the )(?<!\belected the )(?<!\bpicked the )(?<!\bchose the )"
        r"\b(?:wrong|wrng|wrog|worng|rong)\s+(?:person|guy|girl|lady|dude|man)\b"
        r"(?!\s+(?:to\s+(?:ask|talk|speak|call|go)|won|wins|is winning|got elected|in office)\b)",
    ),
    ("wrong_number", r"\b(?:not|isnt)\s+the\s+right\s+(?:number|person)\b"),
    # "I said stop", "I've asked you to stop twice", "how many times do I have to say stop"
    (
        "restated",
        r"\b(?:i|ive|i have|we|i already|already|i keep|i kept)\s+(?:already\s+|have\s+)?"
        r"(?:said|say|saying|told you|told yall|told u|asked you|asked|texted|replied|responded"
        r"|wrote|typed|sent|answered)\s+"
        r"(?:you\s+|yall\s+|u\s+)?(?:(?:already|like|several|many|a few|multiple|two|three|four"
        r"|five|six|ten|a million|\d+|times?|twice)\s+)*"
        r"(?:to\s+)?(?:stop|unsubscribe|opt out|quit)\b",
    ),
    # "please respect my request to stop"
    ("restated", r"\b(?:my|the)\s+request\s+to\s+(?:stop|unsubscribe|opt out|be removed)\b"),
    (
        "restated",
        r"\bhow many (?:more )?times (?:do|does|must|should) (?:i|we) (?:have to |need to |gotta )?"
        r"(?:say|tell|ask|text)(?: (?:you|yall|u|y all))?(?: (?:people|guys|all))?(?: to)?"
        r" (?:stop|unsubscribe|opt out|no)\b",
    ),
    # "I unsubscribed already", "I opted out last week": but not from the mail-ballot list
    (
        "restated",
        r"\b(?:i|ive|i have|i already|already|we)\s+(?:already\s+)?(?:unsubscribed|unsubbed"
        r"|opted out)\b(?!\s+(?:from|of)\s+(?!(?:these|this|your|ur)\b))",
    ),
    ("restated", r"\bwhat part of (?:stop|no|unsubscribe)\b"),
    # "block this number", "I'm blocking you", "blocked and reported"
    (
        "block",
        r"\b(?:block|blocking|blocked)\s+(?:me|you|u|ya|yall|y all)\b(?!\s+(?:out|off|from)\b)",
    ),
    # "block this number", "blocking ur number"; not "I blocked my whole day to vote"
    (
        "block",
        r"\b(?:block|blocking|blocked)\s+(?:this|that|these|my|your|ur|the)\s+"
        r"(?:number|phone|sender|contact|texts?|messages?|line|convo|conversation)\b",
    ),
    # "reported and blocked", "Blocked & reported" (the "&" is gone after normalize)
    (
        "block",
        r"^(?:(?:reported|reporting|report)\s+(?:(?:and|n)\s+)?)?(?:blocked|blocking)"
        rf"{_SIGN_OFF}$",
    ),
    ("block", r"^(?:blocked|blocking)\s+(?:(?:and|n)\s+)?(?:reported|reporting)$"),
    # "Number blocked", "consider yourself blocked", "you're blocked"
    (
        "block",
        r"\b(?:number|sender|yourself|youre|you are|ur|yall are|youve been|you have been)\s+"
        r"(?:now\s+)?blocked(?=\s*$|\s+(?:now|bye|goodbye|and|lol)\b)",
    ),
    # "don't text me", "do not contact me", "never text this number again". Imperative only:
    # in "if you don't text me the address" a subject comes first, and that disqualifies it.
    (
        "do_not_contact",
        r"(?<!you )(?<!\bu )(?<!they )(?<!\bi )(?<!\bwe )"
        rf"\b(?:dont|do not|never)\s+(?:ever\s+)?{_CONTACT}\s+{_ME}\b(?!\s+back\b)",
    ),
    # "do not text", "don't text again please": the imperative alone
    (
        "do_not_contact",
        rf"^(?:please\s+|pls\s+)?(?:dont|do not|never)\s+(?:ever\s+)?{_CONTACT}"
        r"(?:\s+(?:again|anymore|please|pls))*$",
    ),
    # "can you not text me", "could you please not message this number"
    (
        "do_not_contact",
        rf"\b(?:can|could|would|will)\s+(?:you|u|y all|yall)\s+(?:please\s+)?not\s+{_CONTACT}"
        rf"\s+{_ME}\b",
    ),
    # "would you mind not texting me anymore"
    (
        "do_not_contact",
        rf"\b(?:would|do|will)\s+(?:you|u|yall)\s+mind\s+not\s+{_CONTACT_ING}\s+{_ME}\b",
    ),
    # "unsubscribe from all", "unsubscribe from this"
    (
        "unsubscribe_me",
        rf"\b{_UNSUBSCRIBE}\s+(?:me\s+)?from\s+(?:all|everything|this|these|you|yall|your)\b"
        r"(?!\s+(?:\w+\s+)?(?:mail|absentee|ballot|voter|voting))",
    ),
    # "unsubscribe me", "opt me out"; but not "opt me out of the mail ballot list"
    (
        "unsubscribe_me",
        rf"\b{_UNSUBSCRIBE}\s+(?:me|this number|my number)\b"
        r"(?!\s+(?:from|of)\s+(?:the\s+)?(?:mail|absentee|ballot|voter|voting))",
    ),
    ("unsubscribe_me", r"\bopt\s+me\s+out\b"),
    # "I want to opt out", "how do I unsubscribe?", "I'd like to unsubscribe from this list"
    (
        "unsubscribe_me",
        r"\b(?:want to|wanna|would like to|like to|wish to|how do i|how can i|let me|need to)"
        rf"\s+{_UNSUBSCRIBE}"
        rf"(?:\s+(?:from|of)\s+{_LIST}|\s+(?:from|of)\s+(?:this|these|your|the)\s+{_TEXTS}|{_END})",
    ),
    # "no more texts", "I don't want these messages", "I don't want to receive any more texts"
    ("no_more_texts", rf"\bno\s+more\s+(?:of\s+)?(?:these\s+|your\s+)?{_TEXTS}\b{_FOR_A_TIME}"),
    (
        "no_more_texts",
        r"\b(?:dont|do not|no longer)\s+(?:want|wish)\s+(?:to\s+(?:get|receive)\s+)?(?:any\s+)?"
        rf"(?:more\s+)?(?:these\s+|your\s+|this\s+)?{_TEXTS}\b{_FOR_A_TIME}",
    ),
    # "I do not want to be contacted by text", "I'd rather not get these texts"
    (
        "no_more_texts",
        r"\b(?:dont|do not|no longer)\s+(?:want|wish)\s+to\s+be\s+"
        r"(?:contacted|texted|messaged|sent)\b",
    ),
    (
        "no_more_texts",
        r"\b(?:rather|prefer)\s+not\s+(?:to\s+)?(?:get|receive|be sent)\s+"
        rf"(?:any\s+|these\s+|your\s+|more\s+)*{_TEXTS}\b{_FOR_A_TIME}",
    ),
    # Spanish. "deja de escribirme", "dejen de mandarme mensajes", "dejen de molestar"
    ("es_stop_contacting", rf"\b{_ES_DEJAR}\s+de\s+{_ES_CONTACT}\b"),
    # "para de escribirme", "paren de mandar mensajes" (imperative of parar), "favor de no
    # escribirme"
    ("es_stop_contacting", rf"\b(?:para|{_ES_PARAR})\s+de\s+{_ES_CONTACT}\b"),
    # "cancelen los mensajes", "detengan estos mensajes", "ya paren con los textos", "basta de
    # textos", "alto a los mensajes"
    (
        "es_stop_the_texts",
        rf"\b(?:cancelar|cancelen|cancela|cancele|parar|{_ES_PARAR}|detener|detengan|detenga"
        r"|deten|terminen|basta|alto)\s+(?:con\s+|de\s+|a\s+)?"
        r"(?:los\s+|sus\s+|estos\s+|esos\s+|tus\s+|tantos\s+|todos los\s+)?"
        r"(?:mensajes|textos|msjs)\b",
    ),
    ("es_do_not_contact", r"\bno\s+(?:escribirme|enviarme|mandarme|contactarme|textearme)\b"),
    # "favor de no mandar mensajes", "no me estén mandando mensajes", "no quiero que me escriban"
    ("es_do_not_contact", r"\bno\s+(?:mandar|enviar)\s+(?:mas\s+)?(?:mensajes|textos)\b"),
    (
        "es_do_not_contact",
        r"\bno\s+me\s+(?:esten|este|sigan|sigas|siga)\s+"
        r"(?:mandando|enviando|escribiendo|molestando|texteando)\b",
    ),
    (
        "es_do_not_contact",
        r"\bno\s+(?:quiero|deseo)\s+que\s+(?:me\s+)?(?:sigan\s+)?"
        r"(?:escriban|manden|envien|contacten|texteen|escriba|mande|envie|escribiendo|mandando)\b",
    ),
    # "se equivocaron, este no es el número de Ana", "se equivocan, yo no soy Pedro"
    (
        "es_wrong_number",
        r"\b(?:se|te|le)\s+equivoca\w*\s+(?:\w+\s+)?(?:este\s+|yo\s+)?no\s+(?:es|soy)\b",
    ),
    # "no me escribas", "ya no me manden mensajes", "no me envíen más textos"
    (
        "es_do_not_contact",
        r"\bno\s+me\s+(?:escribas|escriban|escriba|textees|texteen|contactes|contacten|contacte"
        r"|escribiera|escribieran|contactara|contactaran|textearan)\b",
    ),
    (
        "es_do_not_contact",
        r"\bno\s+me\s+(?:mandes|manden|mande|envies|envien|envie|mandara|mandaran|enviara"
        r"|enviaran)\s+(?:mas\s+)?"
        rf"(?:{_TEXTS}|textos?|mas|nada)\b",
    ),
    # "número equivocado", "se equivocó de número", "persona equivocada"
    (
        "es_wrong_number",
        r"\b(?:numero|num|persona)\s+(?:esta\s+|es\s+)?(?:equivocad[oa]|incorrect[oa]|erroneo)\b",
    ),
    ("es_wrong_number", r"\btiene(?:n|s)?\s+(?:mal\s+el\s+numero|el\s+numero\s+mal)\b"),
    # "ya dije que alto", "¿cuántas veces tengo que decir basta?"
    (
        "es_restated",
        r"\b(?:ya\s+)?(?:les|te|le)?\s*(?:dije|pedi|habia dicho|habia pedido)\s+(?:que\s+)?"
        rf"(?:ya\s+)?(?:alto|basta|para|parar|{_ES_PARAR}|{_ES_DEJAR}|no me)\b",
    ),
    ("es_restated", r"\bcuantas veces (?:tengo|hay) que decir\w*\b"),
    # "bloquéame", "voy a bloquear este número", "los voy a bloquear", "bloqueado"
    (
        "es_block",
        r"\bbloque(?:ame|enme|eme|arlos|arlas|arte|arlo|ado|ados)\b"
        r"|\bbloque\w*\s+(?:este|su|tu|el|ese)\s+numero\b|\b(?:los|las|te|lo)\s+voy\s+a\s+bloquear\b"
        r"|\b(?:te|los|las|les)\s+(?:bloquee|bloqueo|bloqueare|bloqueamos)\b",
    ),
    # "no me vuelvan a escribir", "no manden más mensajes"
    (
        "es_do_not_contact",
        r"\bno\s+(?:me\s+)?vuelva\w*\s+a\s+(?:escribir|mandar|enviar|contactar|textear|llamar)",
    ),
    (
        "es_do_not_contact",
        r"\bno\s+(?:manden|mande|mandes|envien|envie|envies)\s+(?:mas\s+)?"
        r"(?:mensajes|textos|nada|mas)\b",
    ),
    ("es_wrong_number", r"\bequivoc\w*\s+de\s+(?:numero|persona)\b"),
    # "bórrame de la lista", "sáquenme de su lista", "borren mi número"
    ("es_remove_me", rf"\b{_ES_REMOVE}\s+(?:de\s+)?{_ES_LIST}"),
    ("es_remove_me", rf"\b{_ES_REMOVE}\s+(?:mi|este|ese)\s+(?:numero|telefono|cel|celular)\b"),
    # A bare "bórrenme" / "sáquenme" at the end ("sácame de dudas" is an idiom, so not anywhere).
    (
        "es_remove_me",
        r"\b(?:borrame|borrenme|borreme|sacame|saquenme|saqueme|quitame|quitenme|quiteme"
        r"|eliminame|eliminenme|elimineme)(?=\s*$|\s+(?:por favor|porfa|gracias|ya)\b)",
    ),
    # "no más mensajes", "no quiero recibir más mensajes"
    (
        "es_no_more_texts",
        r"\bno\s+(?:mas|(?:quiero|deseo)\s+(?:recibir\s+)?(?:mas\s+)?)\s*"
        r"(?:sus\s+|estos\s+|tus\s+|los\s+)?(?:mensajes|textos|msjs|sms)\b",
    ),
    # "prefiero no recibir mensajes de texto"
    (
        "es_no_more_texts",
        r"\b(?:prefiero|quiero|deseo|preferiria)\s+no\s+recibir\s+(?:mas\s+)?"
        r"(?:sus\s+|estos\s+|los\s+)?(?:mensajes|textos|msjs|sms)\b",
    ),
    # "ya no quiero recibir nada de ustedes"
    (
        "es_no_more_texts",
        r"\bno\s+(?:quiero|deseo)\s+(?:recibir\s+)?(?:mas\s+)?nada\s+(?:mas\s+)?de\s+"
        r"(?:ustedes|usted|ti|su campana)\b",
    ),
    # "quiero darme de baja", "denme de baja", "cancelar suscripción"
    ("es_unsubscribe", r"\b(?:darme|dame|denme|deme|dar)\s+de\s+baja\b"),
    ("es_unsubscribe", r"\bcancel\w*\s+(?:la\s+|mi\s+|su\s+)?suscripcion\b"),
)
# A tier-2 phrase right after one of these is negated: "don't stop texting me", "I never said
# remove me", "I don't want you to stop texting me". Only words that can sit between the
# negation and the phrase are allowed in between, so "Not interested, stop texting me" still
# opts out.
NEGATED_BEFORE = re.compile(
    r"\b(?:dont|do not|never|wont|cant|cannot|shouldnt|didnt|wouldnt|not|isnt|no need to)"
    r"(?:\s+(?:ever|you|u|to|want|ask|asking|need|needs|said|say|the|a|ya|y all|guys))*\s+$"
)

# Harmless "stop": a noun or "stop by/in/at". A "stop" preceded by one of HARMLESS_BEFORE or
# followed by one of HARMLESS_AFTER is not even flagged.
HARMLESS_STOP_BEFORE = _words(
    *("bus", "train", "subway", "metro", "truck", "pit", "rest", "next", "last", "first"),
    *("one", "full", "quick", "non", "my", "a", "the"),
    *("dont", "do not", "cant", "cannot", "wont", "never", "not", "didnt", "couldnt"),
)
HARMLESS_STOP_AFTER = _words(
    "by", "in", "at", "over", "off", "for", "on", "into", "through", "me from", "us from", "to"
)
HARMLESS_STOP = re.compile(
    rf"\b{HARMLESS_STOP_BEFORE}[\s-]+sto+p+\b|\bsto+p+\s+{HARMLESS_STOP_AFTER}\b"
)
STOP_WORD = re.compile(r"\b(?:sto+p+|stahp|stpo|sotp|stp)\b")

# Tier 3 (flag only). Each is (rule name, pattern). Broad on purpose: a false flag costs a
# volunteer one glance, a missed opt-out costs a complaint.
POSSIBLE_OPT_OUT_PATTERNS: tuple[tuple[str, str], ...] = (
    # A keyword, or a common misspelling of one, inside a longer reply.
    ("keyword_in_sentence", rf"\b{_UNSUBSCRIBE}\b|\b(?:unsuscribe|unsubcribe|revoke)\b"),
    ("keyword_in_sentence", r"\b(?:desuscrib\w*|de baja)\b"),
    (
        "remove",
        r"\bremove\b|\b(?:take|get)\s+me\s+off\b|\boff\s+(?:your|the|this)\s+(?:\w+\s+)?list\b",
    ),
    (
        "leave_me_alone",
        r"\bleave\s+(?:me|us)\s+(?:the\s+\w+\s+)?alone\b|\bgo\s+away\b|\bget\s+lost\b",
    ),
    ("not_interested", r"\bnot\s+interested\b|\bno\s+(?:thanks|thank you|thx|ty)\b"),
    # "who is this? how did you get my number" (a bare "who is this" is an ordinary question)
    (
        "who_has_my_number",
        r"\b(?:how|where)(?:\s+(?:did|do|does|d)|d)\s+(?:you|u|y all|yall|they)\s+get\s+"
        r"(?:my|this)\s+(?:number|phone|cell|info|contact)",
    ),
    (
        "who_has_my_number",
        r"\bwhy\s+(?:are|r|do|does)\s+(?:you|u|yall|y all)\s+(?:keep\s+)?"
        r"(?:texting|messaging|contacting|bothering)\s+(?:me|us|this)\b",
    ),
    ("who_has_my_number", r"\bwho\s+gave\s+(?:you|u|y all|yall)\s+(?:my|this)\b"),
    (
        "who_has_my_number",
        r"\b(?:why|how)\s+(?:do|does|did)\s+(?:you|u|y all|yall)\s+have\s+(?:my|this)\b",
    ),
    ("who_has_my_number", r"\bkeep\s+(?:texting|messaging|bothering|bugging)\s+(?:me|us)\b"),
    (
        "hostile",
        r"\b(?:spam\w*|scam\w*|harass\w*|bother\w*|annoying|unsolicited|sue\s+you)\b",
    ),
    ("hostile", r"\b(?:report(?:ing|ed)?|block(?:ing|ed)?)\s+(?:you|u|this|your)\b|^reported$"),
    # Profanity aimed at the sender ("f*** off" normalizes to "f off"); not "fuck yeah I voted".
    (
        "profanity",
        r"\b(?:f+u*c*k+|f|fk|fck|fuk|eff|screw|piss|bugger)\s+"
        r"(?:off|you|u|outta|this|these|your)\b",
    ),
    ("profanity", r"\b(?:stfu|gtfo|wtf)\b|\bgo\s+to\s+hell\b|\bshut\s+up\b|\bbite\s+me\b"),
    (
        "profanity",
        r"\bwho\s+the\s+(?:hell|heck|fuck|f|fk|eff)\b|\beat\s+(?:shit|dirt)\b|\bpiss\s+off\b"
        r"|\bkiss\s+my\s+ass\b|\bget\s+bent\b",
    ),
    ("no_more", r"\bno\s+more\b|\benough\s+(?:already|texts?|messages?|with)\b|^enough$"),
    ("no_more", r"\btoo\s+many\s+(?:texts?|messages?)|\benough\s+is\s+enough\b"),
    # "quit asking", "I'd rather not get texts on Sunday"
    (
        "no_more",
        r"\b(?:quit|stop)\s+(?:asking|pestering|nagging|reminding)\b"
        r"|\b(?:rather|prefer)\s+not\s+(?:to\s+)?(?:get|receive)\b",
    ),
    ("no_more", rf"\bdone\s+with\s+(?:these|the|your|this|all)\s+{_TEXTS}|\bcease\b"),
    # "if you don't text me ..." (the imperative form is tier 2)
    ("not_texted", rf"\b(?:dont|do not|not|never)\s+(?:ever\s+)?{_CONTACT}\s+{_ME}\b"),
    (
        "never_signed_up",
        r"\b(?:never|didnt|did not)\s+"
        r"(?:sign(?:ed)?\s+up|subscribed?|opt(?:ed)?\s+in|give|gave|ask(?:ed)?\s+for)\b",
    ),
    ("cancel_this", rf"\bcancel\s+(?:this|these|me|my\s+subscription|subscription|{_TEXTS})\b"),
    # Signs the number is not the voter's: "sorry wrong #", "no one here by that name".
    ("wrong_person_hint", r"\bwrong\s*$|\b(?:no one|nobody|noone)\s+(?:here\s+)?(?:by|named)\b"),
    ("wrong_person_hint", r"\bpassed\s+away\b|\bdied\b|\bdeceased\b"),
    ("wrong_person_hint", r"\bchanged\s+(?:her|his|their)?\s*numbers?\b"),
    # "This is Sarah's old number", "I'm not who you think I am"
    ("wrong_person_hint", r"\b\w+s\s+(?:old|former|previous)\s+(?:number|phone|cell)\b"),
    ("wrong_person_hint", r"\bnot\s+(?:who|the person)\s+(?:you|u)\s+(?:think|want|are looking)"),
    (
        "wrong_person_hint",
        r"\b(?:you|u|yall)\s+(?:\w+\s+)?(?:have|got|want|mean|texted|are texting|are looking for)"
        r"\s+(?:someone|somebody)\s+else\b",
    ),
    # Signs the number is not the voter's (any phrasing): "this isn't Maria" is read from the
    # capitalized name in `_names_someone_else`; these from the words.
    (
        "wrong_person_hint",
        r"\b(?:not|isnt|aint|no longer)\s+(?:his|her|their|the|my|\w+s)\s+(?:number|phone|cell)\b",
    ),
    (
        "wrong_person_hint",
        r"\b(?:doesnt|does not|dont|hasnt|has not|havent)\s+(?:have|had)\s+(?:this|that|the)\s+"
        r"(?:number|phone|cell)\b",
    ),
    (
        "wrong_person_hint",
        r"\b(?:no|nobody|no one|noone)\s+(?:\w+\s+)?(?:here|at this number|by that name|named)\b",
    ),
    (
        "wrong_person_hint",
        r"\b(?:dont|do not|never)\s+know\s+(?:a|any|anyone|anybody|who (?:that|this|he|she) is)\b",
    ),
    # Not a voter's phone, or not a voter: a business, a child, someone who cannot vote here.
    (
        "not_a_voter",
        r"\b(?:business|work|office|company|store|shop)\s+(?:line|number|phone|cell)\b"
        r"|\bthis is (?:a|an|the) (?:\w+ )?"
        r"(?:business|company|store|shop|restaurant|church|office|clinic|firm)\b"
        r"|\b(?:line|number|phone) (?:for|of) (?:a|an|the) (?:\w+ )?"
        r"(?:business|company|store|shop|restaurant|church|office|clinic|firm)\b"
        r"|\byouve reached\b|\bthis number (?:is for|belongs to) (?:a|an|the)\b"
        r"|\b(?:belongs to|is for) (?:a|an|the|my|our) (?:\w+ )?"
        r"(?:business|company|store|shop|office|restaurant|firm|practice|clinic)\b|\blandline\b",
    ),
    (
        "not_a_voter",
        r"\b(?:im|hes|shes)\s+(?:only\s+)?(?:[5-9]|1[0-7])\b"
        r"(?!\s*(?:min|mins|minutes|hours|hrs|am|pm|blocks|miles"
        r"|mi|minute|hour|ish|or|-))|\b(?:too young|underage|under age|a minor|not old enough)\b"
        r"|\b(?:im|i am)\s+(?:a\s+|only\s+)?(?:[5-9]|1[0-7])\s*(?:year|yr|yo)\b",
    ),
    # A child's phone: "I'm in 9th grade", "this is my kid's phone"
    (
        "not_a_voter",
        r"\b(?:im|i am)\s+(?:only\s+)?in\s+(?:(?:[1-9]|1[0-2])(?:st|nd|rd|th)\s+grade"
        r"|middle school|high school|elementary)\b"
        r"|\b(?:kids|sons|daughters|childs|grandsons|granddaughters)\s+(?:phone|cell|number)\b"
        r"|\b(?:kid|son|daughter|child|grandson|granddaughter|nephew|niece)\s+(?:uses|has)\s+"
        r"(?:this|my)\s+(?:phone|number|cell)\b",
    ),
    (
        "not_a_voter",
        r"\b(?:not|im not|i am not|arent)\s+(?:a\s+)?(?:us\s+)?citizens?\b|\bfelon\b"
        r"|\b(?:cant|cannot|can not|not allowed to|not eligible to|ineligible to)\s+vote\b"
        r"|\bnot eligible\b|\bi\s+(?:dont|do not|never)\s+vote\b",
    ),
    (
        "not_a_voter",
        r"\b(?:moved|moving|relocated|relocating)\s+(?:away|out|to|back to)\b"
        r"|\b(?:dont|do not|doesnt|does not|no longer)\s+live\s+(?:in|there|here)\b"
        r"|\blive in \w+ now\b"
        r"|\b(?:not|no longer)\s+(?:living\s+)?in\s+\w+(?:\s+\w+)?\s+(?:anymore|any more)\b"
        r"|\blive\s+(?:overseas|abroad|out of state|out of the country)\b"
        r"|\b(?:not|no longer)\s+a\s+resident\b",
    ),
    ("wrong_person_hint", r"\b(?:she|he|they|mom|dad)\s+passed\b"),
    # Spanish.
    (
        "es_wrong_person_hint",
        r"\bno hay ningun\w*\b|\bno conozco a nadie\b"
        r"|\bno es (?:el |la |mi |su |tu )?(?:numero|nombre|telefono|cel|celular|casa)\b"
        r"|\bya no es su\b"
        r"|^(?:esta\s+|estan\s+)?equivocad[oa]s?$",
    ),
    (
        "es_not_a_voter",
        r"\b(?:es|este es)\s+(?:un|el)\s+"
        r"(?:negocio|numero de (?:un|una|trabajo|negocio|tienda|oficina))"
        r"|\beste (?:numero )?es (?:de )?(?:un|una) (?:negocio|tienda|empresa|oficina)\b"
        r"|\b(?:linea|numero|telefono|cel|celular)\s+de\s+(?:(?:un|una|la|el|mi)\s+)?"
        r"(?:negocio|empresa|tienda|oficina|trabajo|compania)\b"
        r"|\b(?:telefono|cel|celular|numero)\s+de\s+mi\s+(?:hij[oa]|nin[oa]|niet[oa]|sobrin[oa])\b",
    ),
    (
        "es_not_a_voter",
        r"\btengo\s+(?:[5-9]|1[0-7])\b|\bmenor de edad\b|\bsoy menor\b"
        r"|\bno soy ciudadan[oa]\b|\bno puedo votar\b|\bya no vivo\b"
        r"|\b(?:me|nos|se)\s+(?:mude|mudamos|mudo|mudaron|cambie|cambiamos|cambiaron)\s+"
        r"(?:a|de estado|de ciudad|de pais|fuera)\b"
        r"|\b(?:me fui|nos fuimos|se fue|se fueron) a vivir\b"
        r"|\bno soy de (?:este|esta|aqui|aca)\b|\bsoy de otro (?:pais|estado)\b"
        r"|\b(?:hij[oa]|nin[oa]|niet[oa])\s+tiene\s+(?:[5-9]|1[0-7])\b"
        r"|\bvivo en \w+(?: \w+)? ahora\b|\bahora vivo en\b",
    ),
    (
        "es_leave_me_alone",
        r"\bno\s+molest\w*\b|\bque\s+(?:pesad[oa]s|fastidio|lata|molest\w*|latos[oa]s|necios)\b",
    ),
    ("es_no_more", r"\bya\s+estuvo\b|\balto\b|\bbasta\b"),
    ("es_who_has_my_number", r"\bpor\s*que\s+(?:tienen|tiene|tienes)\s+mi\b"),
    (
        "es_who_has_my_number",
        r"\bpor\s*que\s+me\s+(?:escriben|escribes|mandan|envian|textean|contactan|siguen)\b",
    ),
    (
        "es_leave_me_alone",
        r"\b(?:dejame|dejenme|dejeme|dejanos|dejen|deje)\s+(?:en\s+paz|tranquil[oa])\b",
    ),
    ("es_leave_me_alone", r"\bno\s+me\s+molest(?:es|en|e|ar)\b"),
    (
        "es_not_interested",
        r"\bno\s+me\s+interesa\b|\bno\s+(?:estoy\s+)?interesad[oa]s?\b|\bno\s+gracias\b",
    ),
    ("es_no_more", r"\bno\s+mas\b|\bbasta\b|\bya\s+no\s+quiero\b"),
    ("es_who_has_my_number", r"\bquien\s+(?:te|les|le)\s+(?:dio|paso)\s+mi\b"),
    (
        "es_who_has_my_number",
        r"\b(?:de donde|como)\s+(?:\w+\s+)?(?:sac|consigu|obtuv|tien)\w*\s+mi\s+"
        r"(?:numero|telefono|cel)",
    ),
    (
        "es_hostile",
        r"\b(?:vete|vayanse|vayase)\s+a(?:l)?\s+(?:la\s+)?"
        r"(?:diablo|carajo|mierda|verga|chingada|fregada)\b",
    ),
    ("es_hostile", r"\bching\w*|\bpinche\w*|\ba\s+la\s+verga\b|\bjodete\b|\bno\s+jodas\b"),
    ("es_hostile", r"\bmierda\b|\bacoso\b|\b(?:reportar|denunciar|bloquear)\b"),
    (
        "es_never_signed_up",
        r"\bnunca\s+(?:me\s+|les\s+|le\s+|te\s+)?(?:inscribi|suscribi|registre|di|pedi|autorice)\b",
    ),
    ("es_wrong_person_hint", r"\bno\s+conozco\s+a\b|\bno\s+vive\s+aqui\b|\baqui\s+no\s+vive\b"),
    ("es_wrong_person_hint", r"\bfallecio\b|\bmurio\b"),
)

_OPT_OUT_PHRASES = tuple((name, re.compile(pattern)) for name, pattern in OPT_OUT_PHRASES)
_POSSIBLE = tuple((name, re.compile(pattern)) for name, pattern in POSSIBLE_OPT_OUT_PATTERNS)
# Single words whose near-misses ("stpo", "unsubcribe", "cancle") in a short reply are flagged.
_TYPO_TARGETS = tuple(
    word for word in (TWILIO_OPT_OUT | SPANISH_OPT_OUT) if len(word) >= 4 and " " not in word
)
_WHITESPACE_ONLY = " \t\r\n"


def normalize(body: str) -> str:
    """Case-folded words of `body` with accents, apostrophes, punctuation and emoji removed."""
    decomposed = unicodedata.normalize("NFKD", body)
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    # "don't" -> "dont": one word, so phrases can name it without fearing "don t".
    joined = re.sub(r"['\u2018\u2019\u02bc`]", "", letters.casefold())
    # "wrong #", "new #": on a phone, "#" is "number".
    joined = joined.replace("#", " number ")
    words = re.sub(r"[^\w\s-]", " ", joined).replace("_", " ").split()
    # Keep the hyphen inside "opt-out" but not one standing alone, as in "Stop -".
    return " ".join(word.strip("-") for word in words if word.strip("-"))


def _squeeze(text: str) -> str:
    """Repeated letters collapsed: "stooooop" -> "stop" (applied to both sides of a compare)."""
    return re.sub(r"(\w)\1+", r"\1", text)


def _alternation(phrases: frozenset[str] | tuple[str, ...]) -> str:
    ordered = sorted({_squeeze(p) for p in phrases}, key=len, reverse=True)
    return "(?:" + "|".join(re.escape(p) for p in ordered) + ")"


_KEYWORD = _alternation(OPT_OUT_KEYWORDS | KEYWORD_IDIOMS)
_POLITE = _alternation(POLITE_WORDS)
# Politeness around one or more keywords ("and" may join them): tier 1. "Stop please and
# thank you".
_KEYWORD_MESSAGE = re.compile(
    rf"(?:{_POLITE}\s+)*{_KEYWORD}(?:\s+(?:and\s+)?{_KEYWORD})*(?:\s+(?:and\s+)?{_POLITE})*"
)


# A sentence and what ends it: ".", "!", "?", ";" or a line break (or the end of the message).
_SENTENCE = re.compile(r"([^.!?;\n]+)([.!?;\n]*)")


def _is_keyword_message(text: str) -> bool:
    return text in OPT_OUT_KEYWORDS or _KEYWORD_MESSAGE.fullmatch(_squeeze(text)) is not None


def _has_keyword_sentence(body: str) -> bool:
    """True when a sentence of its own, not a question, is a tier-1 keyword: "STOP. Who is this"."""
    for match in _SENTENCE.finditer(body):
        sentence, ending = match.group(1), match.group(2)
        if "?" not in ending and _is_keyword_message(normalize(sentence)):
            return True
    return False


# A keyword spelled out or disguised: "S T O P", "s.t.o.p", "S-T-O-P", "st0p", "STOP1", "5TOP".
# Compared with the separators taken out and look-alike digits read as letters, against the
# same keyword messages with their spaces taken out (each letter may repeat: "stoppp").
_LEET = str.maketrans("0531", "osei")


def _letters_may_repeat(phrase: str) -> str:
    return "".join(re.escape(letter) + "+" for letter in phrase.replace(" ", ""))


def _collapsed_alternation(phrases: frozenset[str] | tuple[str, ...]) -> str:
    ordered = sorted(set(phrases), key=len, reverse=True)
    return "(?:" + "|".join(_letters_may_repeat(p) for p in ordered) + ")"


_COLLAPSED_KEYWORD_MESSAGE = re.compile(
    rf"(?:{_collapsed_alternation(POLITE_WORDS)})*"
    rf"(?:{_collapsed_alternation(OPT_OUT_KEYWORDS | KEYWORD_IDIOMS)})+"
    rf"(?:{_collapsed_alternation(POLITE_WORDS)})*"
)
MAX_DISGUISED = 40  # characters: a disguised keyword is a short reply


def _is_disguised_keyword(text: str) -> bool:
    """A short reply that is a keyword message once separators and look-alike digits go."""
    tokens = text.replace("-", " ").split()
    if len(text) > MAX_DISGUISED or not tokens or any(t.isdigit() for t in tokens):
        return False
    as_letters = "".join(token.translate(_LEET) for token in tokens)
    without_digits = "".join(token.strip("0123456789") for token in tokens)
    return any(
        _COLLAPSED_KEYWORD_MESSAGE.fullmatch(candidate) is not None
        for candidate in (as_letters, without_digits)
    )


# Emoji alone: the stop sign is STOP; a raised hand, a no-entry sign or a gesture of refusal
# (a person crossing their arms 🙅, a thumbs down 👎) may be.
STOP_SIGN = "\U0001f6d1"
HAND_OR_NO_ENTRY = frozenset("\u270b\U0001f91a\U0001f590\u26d4\U0001f6ab\U0001f645\U0001f44e")
# Variation selectors, joiners, skin tones and the gender signs of "🙅‍♀️".
_EMOJI_DECORATION = re.compile("[\ufe0f\u200d\U0001f3fb-\U0001f3ff\u2640\u2642\\s!.?]")


def _emoji_alone(body: str) -> str:
    """The emoji a reply consists of (repeated, with skin tones and punctuation), or ""."""
    rest = set(_EMOJI_DECORATION.sub("", body))
    if rest == {STOP_SIGN}:
        return STOP_SIGN
    if rest and rest <= HAND_OR_NO_ENTRY:
        return "hand"
    return ""


# A bare refusal: the whole reply says no, and may answer the volunteer's question rather than
# ask to stop, so a person looks.
# One or more refusals ("Nope nope nope", "Hard no", "Para nada"), with only thanks, a form of
# address or "just" around them ("No sir", "Nah fam", "No. Just no.", "Nel, gracias").
_REFUSAL = _words(
    *("no+", "nope+", "nop", "na+h+", "na+w+", "nay", "nel", "nel pastel", "never", "nunca"),
    *("no way", "hard no", "hell no", "heck no", "absolutely not", "definitely not", "jamas"),
    *("not now", "not today", "not for me", "not interested", "pass", "hard pass", "ill pass"),
    *("im good", "im all set", "all set", "please dont", "pls dont", "bye", "goodbye"),
    *("leave me be", "i said no", "i already said no", "no quiero", "paso", "para nada"),
    *("ahora no", "ahorita no", "de ninguna manera", "no me interesa", "i dont care", "idc"),
    *("dont care", "no bueno", "ya no"),
    *("im not voting", "not voting", "im not gonna vote", "im not going to vote"),
)
_REFUSAL_COMPANY = _words(
    *("thanks?", "thank you", "thank u", "thx", "ty", "sir", "maam", "man", "bro", "fam", "dude"),
    *("buddy", "friend", "just", "really", "sorry", "ok", "okay", "already", "though"),
    *("im good", "im ok", "im okay", "im fine", "im straight", "im set", "estoy bien"),
    *("gracias", "muchas gracias", "amigo", "amiga", "joven", "senor", "senora", "senorita"),
)
BARE_REFUSALS = re.compile(
    rf"(?:{_REFUSAL_COMPANY}\s+)*{_REFUSAL}(?:\s+(?:{_REFUSAL}|{_REFUSAL_COMPANY}))*"
)
# "This isn't Maria", "I'm not Jose", "Who is Carlos?", "No soy Rosa", "This is Mark, not
# Paul", "you have the wrong Jennifer", "No soy la señora Gómez": read on the reply as typed,
# since the capital marks a name ("I'm not sure" is not a name).
_NAMES_SOMEONE_ELSE = re.compile(
    r"(?:\b(?:[Tt]his|[Tt]hat|[Ii]t)\s*(?:is|'s|s)?\s*(?:not|n'?t|isn'?t)\s+|\b[Ii]'?m\s+not\s+"
    r"|\b[Ii] am not\s+|^\s*[Ww]ho(?:'?s| is)\s+|\b[Nn]o soy\s+|\b[Nn]o es\s+|^\s*[Nn]ot\s+"
    r"|[,;]\s*not\s+|\b[Ww]rong\s+)"
    r"(?:(?:la|el|the)\s+)?"
    r"(?:(?:[Ss]e[ñn]ora?|[Ss]e[ñn]orita|[Ss]ra?|[Mm]rs?|[Mm]s|[Mm]iss|[Dd]o[ñn]a|[Dd]on)\.?\s+)?"
    r"([A-Z][a-zà-ÿ]+)\b"
)
NOT_NAMES = frozenset(
    "I Sure Interested Registered Going Voting Yet Now Today Home Available Here There This That"
    " It He She They We You Me My Your Him Her A An The Mine Ready Able Allowed Old Young"
    " Eligible Coming Texting Calling In On At Buena Bueno Mi Su Tu Posible"
    " Number Person Place Address Date Day Time Precinct Ballot Polling"
    " Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March April"
    " May June July August September October November December".split()
)


def _names_someone_else(body: str) -> bool:
    return any(match.group(1) not in NOT_NAMES for match in _NAMES_SOMEONE_ELSE.finditer(body))


# "wrong number" and "wrong person" misspelt one letter off: "wromg number", "wrong persn".
WRONG_WHAT = ("number", "person")
# Swearing inside a request does not change it: "stop fucking texting me", "lose my damn
# number" are read as "stop texting me", "lose my number". ("f***ing" is "f ing" by now.)
_INTENSIFIER = re.compile(
    r"\b(?:f+u*c*k+i*n+g?|fcking|fking|f ing|f in|freakin|freaking|frickin|fricking|friggin"
    r"|frigging|effing|motherfucking|damn|damned|goddamn|goddamned|bloody|dang|darn)\s+(?=\w)"
)


def _spelled_right(text: str) -> str:
    """`text` with "wrong number" or "wrong person" misspelt one letter off spelled right."""
    words = text.split()
    for index, (first, second) in enumerate(zip(words, words[1:], strict=False)):
        if _one_letter_off(first, "wrong"):
            for target in WRONG_WHAT:
                if _one_letter_off(second, target):
                    words[index : index + 2] = ["wrong", target]
    return " ".join(words)


def _one_letter_off(word: str, target: str) -> bool:
    return abs(len(word) - len(target)) <= 1 and _edit_distance(word, target) <= 1


def _letters_for_digits(text: str) -> str:
    """Look-alike digits inside words read as letters: "st0p t3xting m3" -> "stop texting me"."""
    return " ".join(
        word.translate(_LEET)
        if word.isalnum() and not word.isdigit() and not word.isalpha()
        else word
        for word in text.split()
    )


def _phrase_rule(text: str) -> str | None:
    """The name of the first tier-2 phrase found in `text` that is not negated."""
    text = _spelled_right(_letters_for_digits(text))
    for name, pattern in _OPT_OUT_PHRASES:
        for match in pattern.finditer(text):
            if not NEGATED_BEFORE.search(text[: match.start()]):
                return name
    return None


def _edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: insertions, deletions, substitutions, swaps."""
    rows = [list(range(len(b) + 1))] + [[i] + [0] * len(b) for i in range(1, len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            best = min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                best = min(best, rows[i - 2][j - 2] + 1)
            rows[i][j] = best
    return rows[len(a)][len(b)]


def _is_keyword_typo(text: str) -> bool:
    """A reply of at most two words, one of them a near-miss (not an exact copy) of a keyword."""
    words = text.split()
    if len(words) > 2:
        return False
    for word in words:
        if word in OPT_OUT_KEYWORDS:  # "para que" is "what for", not a typo of "pare"
            continue
        for target in _TYPO_TARGETS:
            allowed = 2 if len(target) >= 8 else 1
            if abs(len(word) - len(target)) <= allowed:
                if 0 < _edit_distance(word, target) <= allowed:
                    return True
    return False


def _asks_to_stop(text: str) -> bool:
    """True when "stop" (or a misspelling) appears other than harmlessly or negated."""
    stripped = HARMLESS_STOP.sub(" ", text)
    return any(
        not NEGATED_BEFORE.search(stripped[: match.start()])
        for match in STOP_WORD.finditer(stripped)
    )


def _possible_rule(text: str) -> str | None:
    """The name of the first flag-only rule that matches `text`."""
    if _asks_to_stop(text):
        return "stop_in_sentence"
    for name, pattern in _POSSIBLE:
        if pattern.search(text):
            return name
    if _is_keyword_typo(text):
        return "keyword_typo"
    return None


# A reason to stop beside a stop word: "STOP, I already voted", "Not interested, stop", "Alto,
# ya voté", "Pinches mensajes, ya párenle". Alone, a word next to the stop word may answer the
# volunteer ("ok stop", "no stop" are only flagged); a reason makes the request clear.
_REASON = re.compile(
    r"(?:(?:i|we|ive|i have|we have|we all|already|i already|we already)\s+)*"
    r"(?:voted|already voted)\b"
    r"|(?:(?:im|i am|were|we are)\s+)?not\s+(?:interested|voting)\b"
    r"|(?:no|nah)\s+(?:thanks|thank you|thx|ty)\b|no\s+(?:gracias|me interesa|nos interesa)\b"
    r"|no\s+(?:estoy|estamos)\s+interesad|ya\s+(?:vote|votamos|votaron)\b|(?:votamos|votaron)\b"
)
# Flag rules whose match is itself a reason to stop (a refusal, hostility, "no more").
REASON_RULES = frozenset(
    {"not_interested", "leave_me_alone", "hostile", "profanity", "no_more", "never_signed_up"}
    | {"es_not_interested", "es_leave_me_alone", "es_hostile", "es_no_more", "es_never_signed_up"}
)
# Stop words that may answer the volunteer's question ("Cancel, I already voted" may cancel a
# ride), so not read as a request even beside a reason.
ANSWERING_KEYWORDS = frozenset({"cancel", "end", "quit", "remove", "fin", "cancelar"})


def _is_reason(text: str) -> bool:
    return _REASON.match(text) is not None or _possible_rule(text) in REASON_RULES


def _is_stop_word(text: str) -> bool:
    return _is_keyword_message(text) and not set(_squeeze(text).split()) & ANSWERING_KEYWORDS


# Where one clause ends and another begins: "STOP, I already voted", "Stop - voted by mail".
_CLAUSE_BREAK = re.compile(r"(\s-+\s|[,;:.!?\n\u2013\u2014]+)")


def _clauses(body: str) -> list[tuple[str, str]]:
    """The words of each clause of `body` (`_words_read`), with the marks that end it."""
    parts = _CLAUSE_BREAK.split(body)
    read = [
        (_words_read(text), ending)
        for text, ending in zip(parts[::2], [*parts[1::2], ""], strict=True)
    ]
    return [(text, ending) for text, ending in read if text]


def _has_keyword_clause(body: str) -> bool:
    """A clause of a longer reply is a keyword: "Cancel, I already voted" (flagged)."""
    clauses = _clauses(body)
    return len(clauses) > 1 and any(_is_keyword_message(text) for text, _ in clauses)


def _has_keyword_with_reason(body: str) -> bool:
    """The first or last clauses are a stop word (not asked as a question), the rest a reason."""
    clauses = _clauses(body)
    for cut in range(1, len(clauses)):
        head = " ".join(text for text, _ in clauses[:cut])
        tail = " ".join(text for text, _ in clauses[cut:])
        if "?" not in clauses[cut - 1][1] and _is_stop_word(head) and _is_reason(tail):
            return True
        if "?" not in clauses[-1][1] and _is_stop_word(tail) and _is_reason(head):
            return True
    return False


def _words_read(body: str) -> str:
    """The words every rule reads: `normalize`d, and swearing inside a request left out."""
    return _INTENSIFIER.sub("", normalize(body))


def _stop_sign_read(body: str) -> str:
    """A stop sign beside words is the word "stop" ("🛑 please"), unless the words already say
    it ("🛑 STOP TEXTING 🛑"): then it is decoration."""
    if STOP_WORD.search(normalize(body)):
        return body.replace(STOP_SIGN, " ")
    return body.replace(STOP_SIGN, " stop ")


def explain(body: str) -> Verdict:
    """What `body` asks for, and the name of the rule that decided."""
    if not normalize(body):
        return _explain_emoji(body)
    body = _stop_sign_read(body)
    text = _words_read(body)
    return (
        _explain_keyword(body, text)
        or _explain_clear_request(body, text)
        or _explain_possible(body, text)
    )


def _explain_keyword(body: str, text: str) -> Verdict | None:
    """Tier 1: the whole reply is a keyword (asked or not), or START, or HELP."""
    if _is_keyword_message(text) or _is_disguised_keyword(text):
        rule = "keyword" if _is_keyword_message(text) else "keyword_disguised"
        if body.rstrip().endswith("?"):  # "Cancel?" may ask what we mean; "STOP?" does not
            if _squeeze(text) in {_squeeze(k) for k in UNAMBIGUOUS_KEYWORDS}:
                return Verdict(Intent.OPT_OUT, "keyword_question")
            return Verdict(Intent.POSSIBLE_OPT_OUT, "keyword_question")
        return Verdict(Intent.OPT_OUT, rule)
    if text in OPT_IN_KEYWORDS:
        return Verdict(Intent.OPT_IN, "opt_in_keyword")
    if text in HELP_KEYWORDS:
        return Verdict(Intent.HELP, "help_keyword")
    return None


# A request taken back in the same reply ("stop texting me lol jk") is left to a person.
RETRACTED = re.compile(r"\b(?:jk|j k|just kidding|im kidding|only kidding|es broma|no es cierto)\b")


def _explain_clear_request(body: str, text: str) -> Verdict | None:
    """Tier 2: a keyword as a sentence of its own, a clear phrase, or a keyword with a reason."""
    rule = _clear_request_rule(body, text)
    if rule is None:
        return None
    if RETRACTED.search(text):
        return Verdict(Intent.POSSIBLE_OPT_OUT, "retracted")
    return Verdict(Intent.OPT_OUT, rule)


def _clear_request_rule(body: str, text: str) -> str | None:
    if _has_keyword_sentence(body):
        return "keyword_sentence"
    phrase = _phrase_rule(text)
    if phrase is not None:
        return phrase
    if _has_keyword_with_reason(body):
        return "keyword_with_reason"
    return None


def _explain_possible(body: str, text: str) -> Verdict:
    """Tier 3, a flag for the volunteer, or nothing at all."""
    possible = _possible_rule(text)
    if possible is None and BARE_REFUSALS.fullmatch(text):
        possible = "bare_refusal"
    if possible is None and _names_someone_else(body):
        possible = "wrong_person_hint"
    if possible is None and _has_keyword_clause(body):
        possible = "keyword_in_sentence"
    if possible is not None:
        return Verdict(Intent.POSSIBLE_OPT_OUT, possible)
    return Verdict(Intent.NONE, "none")


def _explain_emoji(body: str) -> Verdict:
    """A reply with no words: a stop sign alone opts out, a hand or a no-entry sign is flagged."""
    emoji = _emoji_alone(body)
    if emoji == STOP_SIGN:
        return Verdict(Intent.OPT_OUT, "stop_sign")
    if emoji:
        return Verdict(Intent.POSSIBLE_OPT_OUT, "hand_emoji")
    return Verdict(Intent.NONE, "empty")


def classify(body: str) -> Intent:
    """What a voter's reply asks for (see the module docstring for the tiers)."""
    return explain(body).intent


def is_opt_out(body: str) -> bool:
    """True when the reply should opt the number out automatically (keyword or clear phrase)."""
    return classify(body) == Intent.OPT_OUT


def is_opt_in(body: str) -> bool:
    """True when the whole reply is START or UNSTOP. YES is `is_yes`, for opted-out numbers."""
    return normalize(body) in OPT_IN_KEYWORDS


def is_yes(body: str) -> bool:
    """True when the whole reply is YES / SI / SÍ. Twilio re-subscribes an opted-out number on
    YES, so for a number we hold as opted out this is a request to opt back in."""
    return normalize(body) in YES_WORDS


def twilio_answers(body: str) -> bool:
    """True when Twilio's default keyword handling matches this body and has already replied.

    Twilio compares the whole body, case-insensitively, with one keyword. How it treats
    punctuation or inner whitespace is undocumented (compliance.md §1.2), so we only accept
    surrounding ASCII whitespace and ASCII letters: "Stop." is False (we send our own
    confirmation), and so is "ſtop", which casefolds to "stop" but which Twilio may not fold.
    """
    word = body.strip(_WHITESPACE_ONLY)
    return word.isascii() and word.isalpha() and word.casefold() in TWILIO_KEYWORDS


# Words that say a reply is in Spanish (after `normalize`), for answering in the voter's language.
SPANISH_WORDS = frozenset(
    "alto para parar pare paren basta baja cancelar detener fin mas ya favor gracias porfa"
    " quiero no me mi mis numero equivocado equivocada mensajes escribas escriban dejen deja"
    " de la lista borra borren borrame sacame quitame denme dar por que soy es esta aqui"
    " nadie ningun ninguna vive conozco molesten interesa".split()
)
ENGLISH_WORDS = frozenset(
    "stop please end quit cancel unsubscribe remove me my number wrong text texting texts"
    " messages the this you your of to from dont do not off list all now thanks thank".split()
)


def language(body: str) -> str:
    """ "es" when a reply reads as Spanish, else "en": by its accents and its words."""
    if any(letter in body.casefold() for letter in "ñáéíóú¿¡"):
        return "es"
    words = normalize(body).split()
    spanish = sum(word in SPANISH_WORDS for word in words)
    english = sum(word in ENGLISH_WORDS for word in words)
    return "es" if spanish > english else "en"
