"""The property table that grows through the book: which problems of backprop each rule avoids.

The columns and the three marks are defined on the book page "The property table: definitions"
(``book/properties.md``); every mark below follows those definitions, and the comment above each
row says why. Chapter 1 starts the table with backprop's row; every later chapter adds its rules.

Adding a rule is one entry in ``ROWS``::

    "FF": Row("Forward-Forward", (YES, YES, YES, YES), chapter=7),
"""
from typing import NamedTuple

COLUMNS = ("no weight transport", "local updates", "no frozen activity", "no update locking")

# The kinds of factor an update can contain ("Local updates" on the page). A factor is local when it
# is one of LOCAL_KINDS; the graded key of exercise 1.2 (``chapters.ch01.LOCAL_FACTORS``) is derived
# from this, so the exercise and the page cannot disagree.
PRE = "pre"                            # the presynaptic activity, as it arrives at the synapse
POST = "post"                          # the postsynaptic neuron's own state, or a signal through its own synapses
BROADCAST_SCALAR = "broadcast scalar"  # one number sent alike to all synapses (a neuromodulator)
BROADCAST_VECTOR = "broadcast vector"  # a few numbers sent alike to every neuron of a layer (the output error)
OTHER_SYNAPSE = "other synapse"        # the strength or sign of a synapse on another neuron
LOCAL_KINDS = (PRE, POST, BROADCAST_SCALAR, BROADCAST_VECTOR)


def is_local(kind: str) -> bool:
    """True when a factor of this kind is local to its synapse (book/properties.md, "Local updates")."""
    if kind not in LOCAL_KINDS + (OTHER_SYNAPSE,):
        raise ValueError(f"unknown kind of factor {kind!r}: use one of {LOCAL_KINDS + (OTHER_SYNAPSE,)}")
    return kind in LOCAL_KINDS

# The three marks. True and False are accepted for YES and NO.
YES, NO, PARTLY = "yes", "no", "partly"
SYMBOLS = {YES: "✓", NO: "✗", PARTLY: "◐ partly"}


class Row(NamedTuple):
    name: str       # full name of the rule
    marks: tuple    # one mark per column: YES when the rule avoids that problem, PARTLY, or NO
    chapter: int    # the chapter that introduces the rule


ROWS = {
    # W2ᵀ carries the error (transport); the hidden update uses W2, held on other cells (non-local);
    # x and f'(a1) are held until the error returns; the error comes down layer by layer
    # (backward locking).
    "BP": Row("Backpropagation", (NO, NO, NO, NO), 1),
    # Nothing is sent back; ΔW_ij uses the synapse's or neuron's own jitter, presynaptic activity
    # and one broadcast scalar. The jitter waits in an eligibility trace, which is synaptic memory,
    # not frozen activity, and nothing travels backwards while it waits. (The clean pass that the
    # baseline L(θ) needs is a choice of baseline; a running average of past losses removes it.)
    # The scalar returns only after a clean and a noisy pass reached the output, then every layer
    # updates at once: update-locked like DFA, not backward-locked.
    "WP/NP": Row("Weight and node perturbation", (YES, YES, YES, PARTLY), 2),
    # B fixed and random; Σ_k B_ik e_k reaches neuron i through its own feedback synapses (local);
    # x and f'(a) are held until the error comes down; layer-by-layer backward sweep.
    "FA": Row("Feedback alignment", (YES, YES, NO, NO), 3),
    # One broadcast error vector, read by each neuron through its own synapses D; activity held;
    # every layer waits for the forward pass to reach the output but not for a backward sweep.
    "DFA": Row("Direct feedback alignment", (YES, YES, NO, PARTLY), 3),
    # The feedback synapses copy the signs of W (one bit each, transported); the hidden update thus
    # depends on synapses of other cells (non-local); otherwise as FA.
    "SS": Row("Sign symmetry", (PARTLY, NO, NO, NO), 3),
    # B is learned, never copied: ΔB_ik = h_i e_k uses the two ends of the feedback synapse; the
    # forward updates are FA's.
    "KP": Row("Kolen-Pollack", (YES, YES, NO, NO), 4),
    # F fixed and random (no transport); each neuron compares its own activity in the two passes,
    # times the presynaptic activity (the output layer: its error), so local. Frozen activity: every
    # hidden neuron holds its clean-pass activity h_l (and the synapse h_{l-1}) while the error
    # travels from the output through F (a one-hop top-down pathway) to the input and the modulated
    # pass climbs back up to layer l, a longer wait than DFA's, which is ✗ too. (The PEPITA papers
    # count this as solved, since no signal goes back through the layers; by the course's definition
    # the held activity is what counts.) Update-locked: hidden layer l waits for the clean pass to
    # reach the output and the modulated pass to reach layer l, with no backward sweep (like DFA).
    "PEPITA": Row("PEPITA", (YES, YES, NO, PARTLY), 5),
    # The time-local form of the follow-up paper: an anti-Hebbian step with each layer's own activity
    # right after the clean pass, a Hebbian step right after the modulated pass. Each step uses the
    # activity of the pass that has just happened, so nothing is held (✓); the modulated pass still
    # needs the clean pass's output error, so the update locking is PEPITA's (◐).
    "PEPITA-TL": Row("PEPITA, time-local form", (YES, YES, YES, PARTLY), 5),
    # B learns from noise, never copied: ΔB_ij = ξ_i r_j uses the noise of the neuron the feedback
    # synapse contacts and the response arriving at it (local); training is FA's, so activity is
    # held until the error comes down layer by layer. The mirror phase (noise instead of data) is a
    # separate mode of the circuit, not a frozen copy of activity.
    "WM": Row("Weight mirroring", (YES, YES, NO, NO), 6),
    # Nothing is sent backwards, so there are no feedback weights to transport; ΔW_ij = pre x̂_j ·
    # post h_i · σ(±(θ − G)), one number per layer and sample broadcast to the layer's synapses
    # (local); the update uses the activity of the pass itself, nothing returns to wait for (no
    # frozen activity); each layer updates from its own objective once its forward step is done.
    "FF": Row("Forward-Forward", (YES, YES, YES, YES), 7),
}


def _symbol(mark) -> str:
    if mark is True:
        mark = YES
    elif mark is False:
        mark = NO
    try:
        return SYMBOLS[mark]
    except KeyError:
        raise ValueError(f"unknown mark {mark!r}: use YES, NO or PARTLY") from None


def rules_up_to(up_to_chapter: int | None = None) -> list:
    """The keys of the rules introduced up to ``up_to_chapter`` (default: all), in book order."""
    return [r for r, row in ROWS.items() if up_to_chapter is None or row.chapter <= up_to_chapter]


def rules_marked(column: str, mark=YES) -> list:
    """The keys of the rules whose mark in ``column`` is ``mark``, in book order."""
    if column not in COLUMNS:
        raise ValueError(f"unknown column {column!r}: use one of {COLUMNS}")
    j = COLUMNS.index(column)
    return [rule for rule, row in ROWS.items() if row.marks[j] == mark]


def name_rules(rules: list) -> str:
    """The rules as a list for the prose: "Weight and node perturbation (chapter 2); ...; Forward-Forward
    (chapter 7)" (semicolons, since a rule's name may hold a comma)."""
    return "; ".join(f"{ROWS[r].name} (chapter {ROWS[r].chapter})" for r in rules)


def property_table_markdown(up_to_chapter: int | None = None) -> str:
    """A Markdown table of the rules met up to ``up_to_chapter`` (default: all).

    ✓ = the rule avoids the problem, ◐ partly = it avoids part of it, ✗ = it does not.
    """
    lines = ["| rule | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for rule in rules_up_to(up_to_chapter):
        name, marks, chapter = ROWS[rule]
        if len(marks) != len(COLUMNS):
            raise ValueError(f"row {rule!r} has {len(marks)} marks for {len(COLUMNS)} columns")
        lines.append(f"| {name} ({rule}, ch. {chapter}) | " + " | ".join(map(_symbol, marks)) + " |")
    return "\n".join(lines)


def property_table(up_to_chapter: int | None = None):
    """The table so far, for display in a notebook cell: ``property_table(up_to_chapter=3)``."""
    from IPython.display import Markdown
    return Markdown(property_table_markdown(up_to_chapter))
