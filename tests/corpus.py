"""The labelled corpus of voters' replies, and the opt-out detector's figures on it.

Two files, each a CSV of ``text,label`` (labels: opt_out, possible_opt_out, none, help,
opt_in; docs/compliance.md says what each means):

- ``tests/data/replies.csv``, the **tuning** part: the rules are written and adjusted against
  it, and tests/test_keywords.py holds it to the goals below.
- ``tests/data/replies_heldout.csv``, the **held-out** part: written before the rules were
  tuned, and never read while tuning them. Only this report reads it, so its figures say how
  the rules do on replies they were not fitted to. When they fall short, write new tuning
  replies of the kind that failed; never adjust the rules to the held-out lines themselves.

``scripts/corpus`` prints both parts' figures (``--misses`` also lists what each part got
wrong; read the held-out misses only to report them, not to tune). While tuning, run
``scripts/corpus --tuning --misses``: the tuning part alone.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gotv.compliance.keywords import Intent, classify

DATA = Path(__file__).parent / "data"
TUNING = DATA / "replies.csv"
HELD_OUT = DATA / "replies_heldout.csv"
LABELS = frozenset(intent.value for intent in Intent)
STOPS = frozenset({Intent.OPT_OUT.value, Intent.POSSIBLE_OPT_OUT.value})
# The goals, met on the held-out part (issue 19).
GOAL_PRECISION = 1.0  # of automatic opt-outs, on every line not labelled opt_out
GOAL_RECALL = 0.97  # of clear opt-outs, opted out automatically
GOAL_MAYBE_CAUGHT = 0.95  # of possible_opt_out lines, flagged or opted out


def load(path: Path) -> list[tuple[str, str]]:
    """(text, label) of every line of one part."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [(row["text"], row["label"]) for row in csv.DictReader(handle)]


@dataclass(frozen=True)
class Figures:
    """How the detector reads one part of the corpus."""

    lines: int
    spanish: int
    by_label: dict[str, int]
    precision: float  # automatic opt-outs that were labelled opt_out
    recall: float  # opt_out lines opted out automatically
    maybe_caught: float  # possible_opt_out lines flagged or opted out
    flag_precision: float  # flagged or opted-out lines labelled opt_out or possible_opt_out
    exact: float  # lines read exactly as labelled
    misses: list[tuple[str, str, str]]  # (text, label, what the detector said)

    def meets_goals(self) -> bool:
        return (
            self.precision >= GOAL_PRECISION
            and self.recall >= GOAL_RECALL
            and self.maybe_caught >= GOAL_MAYBE_CAUGHT
        )


def ratio(hits: int, total: int) -> float:
    return hits / total if total else 1.0


def figures(corpus: Sequence[tuple[str, str]]) -> Figures:
    """Precision, recall and coverage of the detector on `corpus`."""
    said = [classify(text).value for text, _ in corpus]
    labels = [label for _, label in corpus]
    pairs = list(zip(labels, said, strict=True))
    opted = [label for label, intent in pairs if intent == Intent.OPT_OUT.value]
    flagged = [label for label, intent in pairs if intent in STOPS]
    maybes = [intent for label, intent in pairs if label == Intent.POSSIBLE_OPT_OUT.value]
    clear = [intent for label, intent in pairs if label == Intent.OPT_OUT.value]
    return Figures(
        lines=len(corpus),
        spanish=sum(looks_spanish(text) for text, _ in corpus),
        by_label={label: labels.count(label) for label in sorted(LABELS)},
        precision=ratio(opted.count(Intent.OPT_OUT.value), len(opted)),
        recall=ratio(clear.count(Intent.OPT_OUT.value), len(clear)),
        maybe_caught=ratio(sum(intent in STOPS for intent in maybes), len(maybes)),
        flag_precision=ratio(sum(label in STOPS for label in flagged), len(flagged)),
        exact=ratio(sum(label == intent for label, intent in pairs), len(pairs)),
        misses=[
            (text, label, intent)
            for (text, label), intent in zip(corpus, said, strict=True)
            if label != intent
        ],
    )


SPANISH_HINTS = frozenset(
    "ya mi la el que por favor gracias numero número mensajes quiero soy esta está dejen deja"
    " basta alto para parar sí voté votar dónde quién casilla".split()
)


def looks_spanish(text: str) -> bool:
    """A rough count for the report: a reply with a Spanish word or letter in it."""
    words = set(text.lower().replace("¿", " ").replace("¡", " ").split())
    return bool(words & SPANISH_HINTS) or any(c in text for c in "ñáéíóú¿¡")


def report(name: str, path: Path, show_misses: bool) -> Figures:
    result = figures(load(path))
    counts = ", ".join(f"{label} {count}" for label, count in result.by_label.items())
    print(f"{name} ({path.relative_to(DATA.parent.parent)}): {result.lines} replies")
    print(f"  labels: {counts}; about {result.spanish} in Spanish")
    print(f"  automatic opt-outs: precision {result.precision:.3f} (goal {GOAL_PRECISION:.2f})")
    print(f"  clear opt-outs opted out: recall {result.recall:.3f} (goal {GOAL_RECALL:.2f})")
    print(
        f"  maybe-lines flagged or opted out: {result.maybe_caught:.3f}"
        f" (goal {GOAL_MAYBE_CAUGHT:.2f})"
    )
    print(f"  flagged or opted out that were labelled so: {result.flag_precision:.3f}")
    print(f"  read exactly as labelled: {result.exact:.3f}")
    print(f"  goals {'met' if result.meets_goals() else 'NOT met'}")
    if show_misses:
        for text, label, intent in result.misses:
            print(f"    {label:>16} -> {intent:<16} {text}")
    return result


def main(argv: Sequence[str]) -> int:
    show_misses = "--misses" in argv
    report("tuning", TUNING, show_misses)
    if "--tuning" not in argv:  # while tuning: never look at the held-out part
        print()
        report("held-out", HELD_OUT, show_misses)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
