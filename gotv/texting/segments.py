"""What a text costs: its encoding, its segments, and what merge fields do to both.

Carriers bill an SMS by the segment. A message that fits the GSM 03.38 default alphabet is sent
in GSM-7 (160 septets alone, 153 per segment once split); one character outside it, such as
"á", a curly apostrophe or an emoji, sends the whole message in UCS-2 (70 UTF-16 code units
alone, 67 per segment). Plain functions, no Flask.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from gotv.models import Contact, User
from gotv.texting import texts

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The GSM 03.38 default alphabet, row by row (0x00-0x7F; 0x1B is the escape to the extension
# table). Note what it lacks: lowercase "ç", "á", "í", "ó", "ú", "â", "ê", the backtick.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as ESC + character, two septets that a split never parts.
GSM7_EXTENDED = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PER_SEGMENT = 160, 153
UCS2_SINGLE, UCS2_PER_SEGMENT = 70, 67

# Twilio's US list price for an outbound SMS segment as of 2025. Carrier fees (10DLC pass-through
# charges per segment) are extra and not included. Deployments override it with PRICE_PER_SEGMENT.
US_PRICE_PER_SEGMENT = Decimal("0.0083")

# Twilio's Smart Encoding table, taken from Twilio's own segment calculator
# (TwilioDevEd/message-segment-calculator, src/libs/SmartEncodingMap.ts), which mirrors the
# character list in Twilio's docs. Three deliberate differences: Unicode spaces become one space
# (the calculator writes two, which the docs do not), "‹" and "›" map to "<" and ">" (the
# calculator has them crossed; either costs one septet), and invisible control characters the
# calculator guesses at (C0/C1 controls, tab as seven spaces) are left out.
_QUOTES = {
    **dict.fromkeys("«»“”ʺˮ‟❝❞〝〞＂„", '"'),
    **dict.fromkeys("‘’ʻˈʼʽʹ‛＇´ˊ`ˋ❛❜\u0313\u0314︐︑‗", "'"),
    "‹": "<",
    "›": ">",
}
_PUNCTUATION = {
    **dict.fromkeys("÷⧸\u0337\u0338⁄∕／", "/"),
    "¼": "1/4",
    "½": "1/2",
    "¾": "3/4",
    **dict.fromkeys("⧹⧵\u20e5﹨＼", "\\"),
    **dict.fromkeys("\u0332＿", "_"),
    **dict.fromkeys("\u20d2\u20d3∣｜⎸⎹⏐⎜⎟", "|"),
    **dict.fromkeys("⎼⎽―﹣－‐⁃–—•", "-"),
    **dict.fromkeys("﹫＠", "@"),
    **dict.fromkeys("﹩＄", "$"),
    **dict.fromkeys("ǃ︕﹗！", "!"),
    "‼": "!!",
    **dict.fromkeys("﹟＃", "#"),
    **dict.fromkeys("﹪％", "%"),
    **dict.fromkeys("﹠＆", "&"),
    **dict.fromkeys("‚\u0326﹐﹑，､、", ","),
    **dict.fromkeys("❨❪﹙（⟮⦅", "("),
    **dict.fromkeys("❩❫﹚）⟯⦆", ")"),
    **dict.fromkeys("⁎∗⊛✢✣✤✥✱✲✳✺✻✼✽❃❉❊❋⧆﹡＊", "*"),
    **dict.fromkeys("˖﹢＋", "+"),
    **dict.fromkeys("。﹒．｡", "."),
    **dict.fromkeys("ː˸⦂꞉︓：", ":"),
    **dict.fromkeys("⁏︔﹔；", ";"),
    **dict.fromkeys("﹤＜", "<"),
    **dict.fromkeys("\u0347꞊﹦＝", "="),
    **dict.fromkeys("﹥＞", ">"),
    **dict.fromkeys("︖﹖？", "?"),
    **dict.fromkeys("ˆ\u0302＾\u1dcd", "^"),
    **dict.fromkeys("❴﹛｛", "{"),
    **dict.fromkeys("❵﹜｝", "}"),
    "［": "[",
    "］": "]",
    **dict.fromkeys("˜˷\u0303\u0330\u0334∼～", "~"),
    "…": "...",
}
_LETTERS = {
    # Fullwidth digits and capitals, and small-capital letters, become plain ones.
    **{chr(0xFF10 + i): str(i) for i in range(10)},
    **{chr(0xFF21 + i): chr(ord("A") + i) for i in range(26)},
    **dict(zip("ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘʀꜱᴛᴜᴠᴡʏᴢ", "ABCDEFGHIJKLMNOPRSTUVWYZ", strict=True)),
}
_SPACES = {
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009", " "),
    **dict.fromkeys("\u200a\u202f\u205f\u3000\u2028\u2029", " "),
    **dict.fromkeys("\u200b\u2060\ufeff", ""),  # zero-width: dropped
}
SMART_ENCODING: dict[str, str] = {**_QUOTES, **_PUNCTUATION, **_LETTERS, **_SPACES}
_SMART_TABLE = str.maketrans(SMART_ENCODING)


@dataclass(frozen=True)
class Segments:
    """How one message body is sent and billed.

    `units` are septets for GSM-7 and UTF-16 code units for UCS-2; `per_segment` is the limit
    that applied (160 or 70 for a single segment, 153 or 67 once split); `ucs2_characters` are
    the distinct characters, in order of first appearance, that kept the body out of GSM-7.
    """

    encoding: str
    characters: int
    units: int
    segments: int
    per_segment: int
    ucs2_characters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Estimate:
    """The cost of a campaign's initial texts, projected from a sample of rendered messages.

    `segments` and `cost` are for `recipients` messages at the sample's average; `cost` is in
    dollars, rounded to the cent, carrier fees not included.
    """

    sampled: int
    max_segments: int
    average_segments: Decimal
    recipients: int
    segments: int
    price_per_segment: Decimal
    cost: Decimal


@dataclass(frozen=True)
class FieldRisk:
    """A merge field whose values make some sampled messages dearer than plain values would.

    `messages` of the sample cost more; `to_ucs2` of them because they switch to UCS-2.
    `values` are the offending values (a few, distinct); the messages cost up to `segments`
    segments where plain values of the same length would cost up to `plain_segments`;
    `varies` when not all of them cost the same.
    """

    field: str
    messages: int
    to_ucs2: int
    values: tuple[str, ...]
    segments: int
    plain_segments: int
    varies: bool = False


# --- Counting ------------------------------------------------------------------------------


def ucs2_characters(body: str) -> tuple[str, ...]:
    """The distinct characters of `body` outside GSM-7, in order of first appearance."""
    outside = (ch for ch in body if ch not in GSM7_BASIC and ch not in GSM7_EXTENDED)
    return tuple(dict.fromkeys(outside))


def encoding(body: str) -> str:
    """ "GSM-7" when every character of `body` is in the GSM 03.38 alphabet, else "UCS-2"."""
    return UCS2 if ucs2_characters(body) else GSM7


def smart_encode(body: str) -> str:
    """The body Twilio sends when Smart Encoding is on.

    Look-alikes (curly quotes, dashes, "…", Unicode spaces...) are replaced only when that makes
    the whole message GSM-7: a message that stays UCS-2 anyway (an emoji, an "á") is sent as
    written, as Twilio announced the feature ("if there are GSM7/ASCII alternatives and no
    characters that can't be converted in the message"). Replacing inside a UCS-2 message would
    only lengthen it ("…" is one unit, "..." three).
    """
    replaced = body.translate(_SMART_TABLE)
    return replaced if encoding(replaced) == GSM7 else body


def unit_costs(body: str, encoding_: str) -> list[int]:
    """What each character of `body` costs in `encoding_`: septets, or UTF-16 code units."""
    if encoding_ == GSM7:
        return [2 if ch in GSM7_EXTENDED else 1 for ch in body]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in body]


def pack(costs: Sequence[int], per_segment: int) -> int:
    """How many segments of `per_segment` units the characters fill, never splitting one.

    An ESC + character pair or a surrogate pair that would straddle a boundary starts the next
    segment instead, leaving a unit unused, as handsets and carriers do.
    """
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            segments, used = segments + 1, 0
        used += cost
    return segments


def count(body: str, smart_encoding: bool = False) -> Segments:
    """The encoding and segments of `body` as Twilio sends it (after Smart Encoding, if on).

    An empty body is 0 segments: there is nothing to send (Twilio refuses an empty message).
    """
    if smart_encoding:
        body = smart_encode(body)
    forcing = ucs2_characters(body)
    encoding_ = UCS2 if forcing else GSM7
    single, per_segment = (
        (UCS2_SINGLE, UCS2_PER_SEGMENT) if forcing else (GSM7_SINGLE, GSM7_PER_SEGMENT)
    )
    costs = unit_costs(body, encoding_)
    units = sum(costs)
    if units <= single:
        segments, per_segment = (1 if body else 0), single
    else:
        segments = pack(costs, per_segment)
    return Segments(encoding_, len(body), units, segments, per_segment, forcing)


# --- Cost ----------------------------------------------------------------------------------


def estimate(
    messages: Iterable[Segments | str],
    price_per_segment: Decimal = US_PRICE_PER_SEGMENT,
    recipients: int | None = None,
) -> Estimate:
    """The cost of sending `messages`, or of `recipients` messages like them on average.

    Bodies given as strings are counted without Smart Encoding; count them first to apply it.
    With no `recipients`, the estimate is for exactly the messages given.
    """
    counted = [count(m) if isinstance(m, str) else m for m in messages]
    sampled = len(counted)
    recipients = sampled if recipients is None else recipients
    total = sum(c.segments for c in counted)
    average = Decimal(total) / sampled if sampled else Decimal(0)
    projected = average * recipients
    return Estimate(
        sampled=sampled,
        max_segments=max((c.segments for c in counted), default=0),
        average_segments=average.quantize(Decimal("0.01"), ROUND_HALF_UP),
        recipients=recipients,
        segments=int(projected.to_integral_value(ROUND_HALF_UP)),
        price_per_segment=price_per_segment,
        cost=(projected * price_per_segment).quantize(Decimal("0.01"), ROUND_HALF_UP),
    )


# --- Merge fields --------------------------------------------------------------------------


@dataclass
class _Tally:
    messages: int = 0
    to_ucs2: int = 0
    values: dict[str, None] = field(default_factory=dict)
    costs: set[tuple[int, int]] = field(default_factory=set)


MAX_VALUES_NAMED = 3


def merge_field_risks(
    script: str, contacts: Iterable[Contact], texter: User, smart_encoding: bool = False
) -> list[FieldRisk]:
    """The merge fields whose values make messages dearer than plain ASCII values would.

    Each contact's message is rendered with `texts.render` and compared with the same script
    filled with plain letters of the same lengths: a message that switches to UCS-2 or takes more
    segments is blamed on every field whose value holds a character that costs more than a
    plain letter in that message. Fields come with the most affected messages first.
    """
    fields = texts.merge_fields(script)
    tallies: dict[str, _Tally] = {}
    for contact in contacts:
        values = {name: texts.render("{" + name + "}", contact, texter) for name in fields}
        actual = count(texts.render(script, contact, texter), smart_encoding)
        plain = count(plain_render(script, contact, texter, values), smart_encoding)
        switched = actual.encoding == UCS2 and plain.encoding == GSM7
        if not switched and actual.segments <= plain.segments:
            continue
        for name in fields:
            if costs_more_than_letters(values[name], actual, plain, smart_encoding):
                tally = tallies.setdefault(name, _Tally())
                tally.messages += 1
                tally.to_ucs2 += switched
                tally.values[values[name]] = None
                tally.costs.add((actual.segments, plain.segments))
    risks = [
        FieldRisk(
            name,
            t.messages,
            t.to_ucs2,
            tuple(list(t.values)[:MAX_VALUES_NAMED]),
            max(actual for actual, _ in t.costs),
            max(plain for _, plain in t.costs),
            varies=len(t.costs) > 1,
        )
        for name, t in tallies.items()
    ]
    return sorted(risks, key=lambda risk: -risk.messages)


def plain_render(script: str, contact: Contact, texter: User, values: dict[str, str]) -> str:
    """The script rendered for a stand-in contact whose merge values are plain letters.

    The stand-ins are never added to the session.
    """
    plain = {name: "x" * len(value) for name, value in values.items()}
    stand_in = Contact(
        first_name=plain.get("first_name", contact.first_name),
        last_name=plain.get("last_name", contact.last_name),
        zip=plain.get("zip", contact.zip),
        state=plain.get("state", contact.state),
        custom_fields={**(contact.custom_fields or {}), **plain},
    )
    return texts.render(script, stand_in, User(name=plain.get("texter_name", texter.name)))


def costs_more_than_letters(value: str, message: Segments, plain: Segments, smart: bool) -> bool:
    """Whether some character of `value` costs `message` more than a plain letter would.

    That is a character outside GSM-7 when the message switched to UCS-2 because of it, an
    extension-table character in a GSM-7 message, or an emoji in a message UCS-2 anyway.
    """
    if smart:
        value = value.translate(_SMART_TABLE)
    if message.encoding == GSM7:
        return any(ch not in GSM7_BASIC for ch in value)
    if plain.encoding == GSM7:
        return bool(ucs2_characters(value))
    return any(ord(ch) > 0xFFFF for ch in value)


# --- A script's report ---------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptReport:
    """A script rendered for a sample of contacts: what its texts are like and what they cost.

    `encodings` counts the sampled messages by encoding; `characters` is the (fewest, most)
    characters of a sampled message after Smart Encoding, if on.
    """

    encodings: dict[str, int]
    characters: tuple[int, int]
    estimate: Estimate
    risks: list[FieldRisk]


def report(
    script: str,
    contacts: Sequence[Contact],
    texter: User,
    *,
    smart_encoding: bool,
    recipients: int,
    price_per_segment: Decimal = US_PRICE_PER_SEGMENT,
) -> ScriptReport:
    """The script rendered (by `texts.render`) for each of `contacts`, counted and priced.

    The estimate projects the sample's average segments onto `recipients` messages.
    """
    counted = [count(texts.render(script, c, texter), smart_encoding) for c in contacts]
    encodings: dict[str, int] = {}
    for c in counted:
        encodings[c.encoding] = encodings.get(c.encoding, 0) + 1
    lengths = [c.characters for c in counted] or [0]
    return ScriptReport(
        encodings=encodings,
        characters=(min(lengths), max(lengths)),
        estimate=estimate(counted, price_per_segment, recipients),
        risks=merge_field_risks(script, contacts, texter, smart_encoding),
    )


def describe(risk: FieldRisk, sampled: int) -> str:
    """One sentence for an organizer: which field, which values, and what they cost.

    For example "3 of 200 sampled messages switch to UCS-2 because first_name contains ‘Zoë’:
    they cost 2 segments instead of 1."
    """
    one = risk.messages == 1
    if risk.to_ucs2 == risk.messages:
        change = "switches to UCS-2" if one else "switch to UCS-2"
    elif risk.to_ucs2:
        change = "switch to UCS-2 or take extra segments"
    else:
        change = "takes extra segments" if one else "take extra segments"
    values = ", ".join(f"‘{value}’" for value in risk.values)
    if risk.segments > risk.plain_segments:
        up_to = "up to " if risk.varies else ""
        cost = (
            f"{'it costs' if one else 'they cost'} {up_to}{_segments(risk.segments)}"
            f" instead of {risk.plain_segments}"
        )
    else:
        room = "UCS-2 leaves room for 70 characters, not 160"
        cost = f"still {_segments(risk.segments)}, but {room}"
    return (
        f"{risk.messages} of {sampled} sampled messages {change}"
        f" because {risk.field} contains {values}: {cost}."
    )


def _segments(number: int) -> str:
    return f"{number} segment" if number == 1 else f"{number} segments"
