"""Intent rules: many phrasings, and the negatives that must not act."""

from __future__ import annotations

import pytest

from warmline.agent.intents import (
    DEFAULT_MENU,
    Menu,
    MenuOption,
    detect_intent,
    intent_for_digit,
    is_affirmative,
    is_negative,
)

HANDOFF = [
    "agent",
    "Agent, please.",
    "representative",
    "I want to talk to a person",
    "Can I speak with someone?",
    "let me talk to a human",
    "get me a human being",
    "operator!",
    "live agent",
    "customer service representative please",
    "I'd like to speak to a real person",
    "press 0",
    "I pressed zero",
    "transfer me",
    "let me speak to your supervisor",
    "No, I don't need anything else, just get me an agent",
    "this isn't helping, I want a rep",
    "can I talk to somebody",
]

NOT_HANDOFF = [
    "I don't want a human",
    "no agent please, what are your hours",
    "I'd rather not talk to a person",
    "are you a real person?",
    "am I talking to a robot",
    "is this a human?",
    "what are your support hours",
    "how do I reset my router",
    "I never asked for an operator",
]

END = [
    "bye",
    "Goodbye!",
    "thanks, bye",
    "bye bye",
    "that's all",
    "that's all, thank you",
    "no that's it",
    "no thanks, that's everything",
    "nothing else",
    "I'm done",
    "nope, I'm all set",
    "hang up",
    "you can end the call",
    "have a nice day",
    "That is all.",
]

NOT_END = [
    "don't hang up",
    "why does my call hang up",
    "my call keeps hanging up",
    "before I hang up, what are your hours",
    "that's all? what about the price",
    "I'm not done yet",
    "how do I end my contract",
    "what are your hours",
]


@pytest.mark.parametrize("text", HANDOFF)
def test_requests_for_a_person_hand_off(text: str) -> None:
    intent = detect_intent(text)
    assert intent.kind == "handoff"
    assert intent.reason


@pytest.mark.parametrize("text", NOT_HANDOFF)
def test_negated_or_curious_mentions_of_a_person_do_not_hand_off(text: str) -> None:
    assert detect_intent(text).kind != "handoff"


@pytest.mark.parametrize("text", END)
def test_goodbyes_end_the_call(text: str) -> None:
    assert detect_intent(text).kind == "end"


@pytest.mark.parametrize("text", NOT_END)
def test_questions_and_negations_about_ending_do_not_end(text: str) -> None:
    assert detect_intent(text).kind == "answer"


def test_a_handoff_wins_over_a_goodbye() -> None:
    assert detect_intent("that's all, just transfer me to an agent").kind == "handoff"


def test_curly_apostrophes_count_as_apostrophes() -> None:
    assert detect_intent("I don\u2019t want a human").kind == "answer"
    assert detect_intent("that\u2019s all").kind == "end"


def test_the_default_menu() -> None:
    assert intent_for_digit("1").kind == "action" and intent_for_digit("1").action == "billing"
    assert intent_for_digit("2").action == "technical_support"
    zero = intent_for_digit("0")
    assert zero.kind == "handoff" and zero.reason == "key 0"
    assert intent_for_digit("7").kind == "answer"
    assert DEFAULT_MENU.prompt() == (
        "Press 1 for billing, 2 for technical support, or 0 for a person."
    )


@pytest.mark.parametrize(
    ("text", "kind", "action"),
    [
        ("press 1", "action", "billing"),
        ("I'd like to press two please", "action", "technical_support"),
        ("I pressed zero", "handoff", "human"),
        ("press 7", "answer", None),
        ("don't press 1", "answer", None),
    ],
)
def test_a_spoken_key_acts_like_the_key(text: str, kind: str, action: str | None) -> None:
    intent = detect_intent(text)
    assert (intent.kind, intent.action) == (kind, action)


def test_a_spoken_key_follows_the_configured_menu() -> None:
    menu = Menu({"5": MenuOption("sales", "sales", "Sales.")})
    assert detect_intent("press five", menu=menu).action == "sales"
    assert detect_intent("press 0", menu=menu).kind == "answer"


def test_a_configured_menu() -> None:
    menu = Menu({"5": MenuOption("sales", "sales", "Sales.", handoff=True)})
    assert intent_for_digit("5", menu=menu).kind == "handoff"
    assert intent_for_digit("1", menu=menu).kind == "answer"
    assert menu.prompt() == "Press 5 for sales."
    assert Menu().prompt() == ""


@pytest.mark.parametrize("text", ["yes", "Yes please", "sure", "yeah, go ahead", "okay"])
def test_affirmatives(text: str) -> None:
    assert is_affirmative(text) and not is_negative(text)


@pytest.mark.parametrize("text", ["no", "no thanks", "nope", "I'm good", "never mind"])
def test_negatives(text: str) -> None:
    assert is_negative(text) and not is_affirmative(text)


@pytest.mark.parametrize("text", ["what are your hours", "", "the router is broken"])
def test_neither_yes_nor_no(text: str) -> None:
    assert not is_affirmative(text) and not is_negative(text)
