"""Speech shaping: markdown out, symbols and URLs spoken, short sentences, lossless chunks."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warmline.agent.speech import (
    MAX_SENTENCE_WORDS,
    SpeechShaper,
    for_speech,
    speak_url,
    speech_chunks,
)


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("**Bold** and __strong__ and *soft* and _quiet_", "Bold and strong and soft and quiet"),
        ("# Plans\nWe have four.", "Plans. We have four."),
        ("- one\n- two\n* three", "one. two. three."),
        ("1. Unplug it\n2) Wait", "Unplug it. Wait."),
        ("See [our help page](https://x.example/help).", "See our help page."),
        ("![a router](img.png) here", "a router here"),
        ("Run `restart` now", "Run restart now"),
        ("> quoted text", "quoted text"),
        ("Fast & cheap", "Fast and cheap"),
        ("20% off", "20 percent off"),
        ("It costs $12.50", "It costs 12 dollars and 50 cents"),
        ("It costs $45/mo.", "It costs 45 dollars a month."),
        ("$1 or $0.05 or $1,299.99", "1 dollar or 5 cents or 1299 dollars and 99 cents"),
        ("$2.5 each", "2 dollars and 50 cents each"),
        ("Open 24/7.", "Open 24 hours a day, 7 days a week."),
        ("Go to brightwave.example/help", "Go to brightwave dot example slash help"),
        (
            "Visit https://www.brightwave.example/help/wifi-setup.",
            "Visit brightwave dot example slash help slash wifi dash setup.",
        ),
        ("Email help@brightwave.example today", "Email help at brightwave dot example today"),
        ("Fast; cheap.", "Fast. Cheap."),
        ("Fast \u2014 and cheap", "Fast, and cheap"),
        ("Speeds of 2.4 gigahertz", "Speeds of 2.4 gigahertz"),
        ("Plans, e.g. Spark.", "Plans, for example, Spark."),
    ],
)
def test_for_speech(text: str, spoken: str) -> None:
    assert for_speech(text) == spoken


def test_speak_url() -> None:
    assert speak_url("brightwave.example", "/help") == "brightwave dot example slash help"
    assert speak_url("My-Site.example") == "my dash site dot example"


def test_long_sentences_are_split_at_a_conjunction() -> None:
    words = " ".join(["word"] * 20)
    text = f"First {words}, and then {words} again."
    spoken = for_speech(text)
    sentences = [s for s in re.split(r"(?<=\.)\s+", spoken) if s]
    assert len(sentences) == 2
    assert sentences[1].startswith("And then")
    assert all(len(s.split()) <= MAX_SENTENCE_WORDS for s in sentences)


def test_a_long_sentence_without_a_good_cut_is_kept() -> None:
    text = " ".join(["word"] * 40) + "."
    assert for_speech(text) == text


def test_speakable_text_is_unchanged() -> None:
    text = "Our phone team is open from 7 in the morning to 11 at night. Chat is always open."
    assert for_speech(text) == text


def test_chunks_split_at_clauses_and_keep_spaces() -> None:
    text = "First, unplug the Hub for 30 seconds. Then plug it back in! Done?"
    chunks = speech_chunks(text)
    assert "".join(chunks) == text
    # "Done?" alone is shorter than min_chars: it rides with the chunk before it.
    assert chunks == ["First, unplug the Hub for 30 seconds. ", "Then plug it back in! Done?"]


def test_short_clauses_are_merged() -> None:
    assert speech_chunks("Yes. It is. Sure thing.", min_chars=8) == ["Yes. It is. ", "Sure thing."]
    assert speech_chunks("Yes. It is. Sure.", min_chars=8) == ["Yes. It is. Sure."]


def test_long_chunks_are_cut_after_a_space() -> None:
    text = " ".join(["word"] * 100)
    chunks = speech_chunks(text, max_chars=50)
    assert "".join(chunks) == text
    assert all(len(c) <= 50 for c in chunks)
    assert all(c.endswith(" ") for c in chunks[:-1])


def test_numbers_with_commas_and_decimals_are_not_cut() -> None:
    text = "It costs 1,299 dollars and 99.9 percent of people agree."
    assert speech_chunks(text, min_chars=1) == [text]


@given(st.text(max_size=400), st.integers(1, 40), st.integers(1, 300))
def test_chunks_always_reassemble_to_the_text(text: str, low: int, high: int) -> None:
    chunks = speech_chunks(text, min_chars=low, max_chars=max(high, 1))
    assert "".join(chunks) == text
    assert all(chunks)


MARKDOWN = """# Plans & prices
Our **Flow 1 Gig** plan is $65/mo \u2014 that's 20% off!
- Visit [our help page](https://www.brightwave.example/help).
- Email help@brightwave.example; we reply fast
1. Unplug the *Hub*
2. Wait 30 seconds
Support is 24/7."""


@pytest.mark.parametrize("split", [r"\S+\s*|\s+", r".{1,3}", r".{1,40}"])
def test_the_shaper_on_a_token_stream_says_what_for_speech_says(split: str) -> None:
    shaper = SpeechShaper()
    out: list[str] = []
    for token in re.findall(split, MARKDOWN, flags=re.S):
        out += shaper.feed(token)
    out += shaper.flush()
    assert "".join(out) == for_speech(MARKDOWN)
    assert "*" not in "".join(out) and "$" not in "".join(out)


def test_the_shaper_emits_the_first_sentence_before_the_stream_ends() -> None:
    shaper = SpeechShaper()
    assert shaper.feed("Hello **there**.") == []
    ready = shaper.feed(" More")
    assert ready == ["Hello there."]
    assert shaper.flush() == [" More"]
    assert shaper.flush() == []
