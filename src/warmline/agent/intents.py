"""What the caller wants: an answer, a human, the end of the call, or a menu action.

Deterministic rules, not a model: they run in microseconds on a cold start, they are the
same on every run (tests can pin them), and the cases that matter on a phone line are few
and well known. A caller asks for a person with a handful of words ("agent",
"representative", "talk to a human", "operator", or by pressing 0); a caller ends with
"bye" or "that's all". What the rules must not do is act on the words in the wrong
sense: "I don't want a human" is not a handoff, "why does my call hang up" is not a
goodbye, and "are you a real person?" is a question for the knowledge base.

Value types are NamedTuples, not dataclasses: creating a frozen slotted dataclass costs
~0.5-2.5 ms of import time each (it generates and ``exec``s code), a NamedTuple ~0.05 ms,
and this module is imported on the cold start of every agent environment.

Everything is checked per clause (split at punctuation and at "but" / "just"), so
"no, I don't need anything else, just get me an agent" still hands off.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal, NamedTuple

__all__ = [
    "DEFAULT_MENU",
    "Intent",
    "IntentKind",
    "Menu",
    "MenuOption",
    "detect_intent",
    "intent_for_digit",
    "is_affirmative",
    "is_negative",
]

IntentKind = Literal["answer", "handoff", "end", "action"]


class Intent(NamedTuple):
    """The detected intent.

    Attributes:
        kind: ``answer`` (search and answer), ``handoff`` (a human), ``end`` (hang up),
            ``action`` (a menu option chosen with a key).
        reason: why: the phrase or key that decided it (logged; goes in handoff data).
        action: the menu option's name, for ``action`` (and ``handoff`` by key).
    """

    kind: IntentKind
    reason: str = ""
    action: str | None = None


class MenuOption(NamedTuple):
    """One key of the DTMF menu.

    Attributes:
        name: the option's id (``billing``), logged and stored as the call's topic.
        label: how the menu reads it ("billing").
        say: what the agent says when the key is pressed.
        handoff: pressing it transfers to a human.
    """

    name: str
    label: str
    say: str = ""
    handoff: bool = False


class Menu(NamedTuple):
    """The DTMF menu: digit -> option."""

    options: Mapping[str, MenuOption] = {}  # never mutated

    def get(self, digit: str) -> MenuOption | None:
        """The option for ``digit``, if there is one."""
        return self.options.get(digit)

    def prompt(self) -> str:
        """The menu read aloud: "Press 1 for billing, 2 for ..., or 0 for a person."."""
        parts = [f"{digit} for {option.label}" for digit, option in self.options.items()]
        if not parts:
            return ""
        if len(parts) == 1:
            return f"Press {parts[0]}."
        return "Press " + ", ".join(parts[:-1]) + ", or " + parts[-1] + "."


DEFAULT_MENU = Menu(
    {
        "1": MenuOption(
            "billing",
            "billing",
            "Billing. You can ask me about your bill, payments, autopay, and fees. "
            "What would you like to know?",
        ),
        "2": MenuOption(
            "technical_support",
            "technical support",
            "Technical support. Tell me what's going on with your internet or Wi-Fi, "
            "and I'll help you fix it.",
        ),
        "0": MenuOption("human", "a person", handoff=True),
    }
)


class _Lazy:
    """A regex compiled on first use: compiling these costs ~4 ms, kept off the import."""

    __slots__ = ("_source", "_compiled")

    def __init__(self, source: str) -> None:
        self._source = source
        self._compiled: re.Pattern[str] | None = None

    @property
    def rx(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self._source)
        return self._compiled

    def search(self, text: str) -> re.Match[str] | None:
        return self.rx.search(text)

    def match(self, text: str) -> re.Match[str] | None:
        return self.rx.match(text)

    def split(self, text: str) -> list[str]:
        return self.rx.split(text)


_CLAUSES = _Lazy(r"[,.;!?]+|\s+(?:but|just|so)\s+|\s+and\s+(?=(?:can|could|get|put)\b)")
_NEGATION = _Lazy(
    r"\b(?:don'?t|do not|doesn'?t|does not|didn'?t|no|not|never|without|rather not|"
    r"won'?t|no need|stop)\b"
)
# A leading "no" is not a negation of a goodbye: "no that's it" ends the call.
_END_NEGATION = _Lazy(r"\b(?:don'?t|do not|not|never|won'?t|can'?t)\b")
# "are you a real person?", "is this a human?" -- questions about the agent, not requests.
_ABOUT_AGENT = _Lazy(
    r"\b(?:are|am|is)\s+(?:you|i|this|it)\s+(?:talking to\s+|speaking (?:to|with)\s+)?"
    r"(?:a\s+|an\s+)?(?:real\s+|live\s+|actual\s+)?(?:human|person|robot|bot|machine|"
    r"computer|agent|ai)\b"
)
_HANDOFF = _Lazy(
    r"\b(?:(?:human|live|real|customer service|support|service)\s+)?"
    r"(?:agent|representative|rep|operator|human being|human|live person|real person|"
    r"actual person|someone real|supervisor|manager)s?\b"
    r"|\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|some\s*)?(?:one|body|person|people|"
    r"someone|somebody|human|agent|representative|operator)\b"
    r"|\btransfer (?:me|my call)\b"
)
# "press 1", "I pressed zero": a caller who says the key instead of pressing it.
_PRESS = _Lazy(
    r"\b(?:press(?:ed|ing)?|dial(?:ed|ing)?|hit|push(?:ed)?)\s+(?:the\s+)?"
    r"(\d|\*|#|zero|oh|one|two|three|four|five|six|seven|eight|nine|star|pound|hash)\b"
)
_END = _Lazy(
    r"\b(?:good\s*bye|bye(?:\s*bye)?|bye now|see you|see ya|hang(?:ing)? up|end (?:the|this) call|"
    r"that'?s (?:all|it|everything)|that is (?:all|it|everything)|nothing else|"
    r"no more questions|i'?m (?:all )?(?:done|set|good)|i am (?:all )?(?:done|set|good)|"
    r"have a (?:good|nice|great) (?:day|night|one|evening))\b"
)
# A clause that asks about something ("why does my call hang up", "before I hang up, ...")
# is a question, not a goodbye.
_QUESTION_START = _Lazy(
    r"^\s*(?:what|how|why|when|where|who|which|can|could|does|do|did|is|are|will|would|"
    r"should|before|if|after|my)\b"
)
_YES = _Lazy(
    r"^\s*(?:yes|yeah|yep|yup|sure|ok|okay|please|alright|all right|of course|"
    r"definitely|absolutely|go ahead|sounds good|i would|i'?d like that|correct|right)\b"
)
_NO = _Lazy(r"^\s*(?:no|nope|nah|not really|no thanks|no thank you|i'?m good|never mind)\b")
_DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "star": "*",
    "pound": "#",
    "hash": "#",
}


def _clauses(text: str) -> list[str]:
    return [c.strip() for c in _CLAUSES.split(text.lower().replace("\u2019", "'")) if c.strip()]


def _negated(clause: str, start: int) -> bool:
    """True when a negation comes before position ``start`` within the same clause."""
    return _NEGATION.search(clause[:start]) is not None


def detect_intent(text: str, *, menu: Menu = DEFAULT_MENU) -> Intent:
    """The intent of a final prompt (what the caller said).

    Args:
        text: the caller's utterance (``voicePrompt``).
        menu: the DTMF menu; saying "press 1" acts like pressing it.

    Returns:
        The menu option's intent when a clause says a key on the menu; ``handoff`` when
        any clause asks for a person (not negated, not a question about the agent);
        ``end`` when a clause says goodbye and no clause asks a question; otherwise
        ``answer``.
    """
    clauses = _clauses(text)
    for clause in clauses:
        press = _PRESS.search(clause)
        if press and not _negated(clause, press.start()):
            keyed = intent_for_digit(press.group(1), menu=menu)
            if keyed.kind != "answer":
                return keyed._replace(reason=press.group(0))
        if _ABOUT_AGENT.search(clause):
            continue
        match = _HANDOFF.search(clause)
        if match and not _negated(clause, match.start()):
            return Intent("handoff", reason=match.group(0).strip())
    goodbye: str | None = None
    for clause in clauses:
        match = _END.search(clause)
        if match is None:
            continue
        before = clause[: match.start()]
        if _END_NEGATION.search(before) or _QUESTION_START.match(before):
            return Intent("answer")
        goodbye = goodbye or match.group(0)
    if goodbye is not None and not any(
        _QUESTION_START.match(c) and not _END.search(c) for c in clauses
    ):
        return Intent("end", reason=goodbye)
    return Intent("answer")


def intent_for_digit(digit: str, *, menu: Menu = DEFAULT_MENU) -> Intent:
    """The intent of a key press: the menu option's action, or a handoff."""
    digit = _DIGIT_WORDS.get(digit, digit)
    option = menu.get(digit)
    if option is None:
        return Intent("answer", reason=f"key {digit}")
    if option.handoff:
        return Intent("handoff", reason=f"key {digit}", action=option.name)
    return Intent("action", reason=f"key {digit}", action=option.name)


def is_affirmative(text: str) -> bool:
    """ "Yes", "sure", "please do" -- the caller accepts an offer."""
    clauses = _clauses(text)
    return bool(clauses) and _YES.match(clauses[0]) is not None and not is_negative(text)


def is_negative(text: str) -> bool:
    """ "No", "no thanks", "I'm good" -- the caller declines an offer."""
    clauses = _clauses(text)
    return bool(clauses) and _NO.match(clauses[0]) is not None
