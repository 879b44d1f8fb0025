"""Speech shaping: markdown out, symbols and URLs spoken, short sentences, lossless chunks."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import assume, given
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


# --- sentence ends, the bounded hold, and token splits ------------------------------------
def shaped(tokens: list[str], **kwargs: Any) -> list[str]:
    shaper = SpeechShaper(**kwargs)
    out: list[str] = []
    for token in tokens:
        out += shaper.feed(token)
    return out + shaper.flush()


@pytest.mark.parametrize(
    ("tokens", "first"),
    [
        (["It costs 5.", " The plan"], "It costs 5."),
        (["Wait 30 seconds. ", "Then"], "Wait 30 seconds."),
        (["Is it 5? ", "Yes"], "Is it 5?"),
        (["We open at 7. ", "Chat"], "We open at 7."),
    ],
)
def test_a_period_after_a_number_ends_the_sentence(tokens: list[str], first: str) -> None:
    shaper = SpeechShaper()
    assert shaper.feed(tokens[0]) == []  # "5." may still become "5.50"
    assert shaper.feed(tokens[1]) == [first]


@pytest.mark.parametrize(
    "text",
    [
        "Call Dr. Smith now",
        "Plans, e.g. Spark and Flow",
        "That is, i.e. the router",
        "It is on Main St. near the park",
        "1. Unplug the Hub",
        "Step one\n2. Wait",
        "It costs 5.50 a month",
    ],
)
def test_abbreviations_list_markers_and_decimals_do_not_end_a_sentence(text: str) -> None:
    shaper = SpeechShaper()
    for token in re.findall(r"\S+\s*", text):
        assert shaper.feed(token) == [] or "\n" in text
    assert "".join(shaper.flush()) != "" or "\n" in text


def test_an_abbreviation_does_not_cut_a_chunk() -> None:
    text = "Please call Dr. Smith at the front desk. Then wait."
    assert speech_chunks(text, min_chars=1) == [
        "Please call Dr. Smith at the front desk. ",
        "Then wait.",
    ]


def test_held_text_is_released_at_a_clause_boundary_after_the_hold() -> None:
    shaper = SpeechShaper(hold_s=0.5)
    assert shaper.feed("First, unplug the Hub", now=10.0) == []
    assert shaper.deadline() == 10.5
    assert shaper.poll(10.49) == []
    # Every whole word that waited the hold goes ("Hub" may go on), and no further
    # than a clause boundary when there is none after that.
    assert shaper.poll(10.5) == ["First, unplug the"]
    assert shaper.feed(" and then,", now=10.6) == []
    # "Hub" became a whole word at 10.6, with the space after it: it waits from then.
    assert shaper.deadline() == pytest.approx(11.1)
    assert shaper.poll(11.0) == []
    assert shaper.feed(" wait", now=10.7) == []
    assert shaper.poll(11.1) == [" Hub and then,"]
    assert shaper.flush() == [" wait"]


def test_without_a_clause_boundary_the_hold_releases_whole_words() -> None:
    shaper = SpeechShaper(hold_s=0.5)
    assert shaper.feed("so what we can do is rest", now=0.0) == []
    assert shaper.poll(0.5) == ["so what we can do is"]
    assert shaper.deadline() is None  # only part of a word is left
    assert shaper.feed("art it", now=0.6) == []
    assert shaper.poll(1.1) == [" restart"]


def test_markdown_a_cut_leaves_open_is_not_read_aloud() -> None:
    shaper = SpeechShaper(hold_s=0.5)
    assert shaper.feed("Try this, **unplug it, then wait", now=0.0) == []
    assert shaper.poll(1.0) == ["Try this, unplug it, then"]
    assert shaper.feed("** for a minute", now=1.0) == []
    assert "".join(shaper.poll(2.0) + shaper.flush()) == " wait for a minute"


def test_a_long_sentence_without_punctuation_is_spoken_as_it_is_written() -> None:
    """One 40 s sentence, a word every 0.25 s: no word waits longer than the hold."""
    shaper = SpeechShaper(hold_s=0.5)
    spoken = 0
    for n in range(160):
        now = n * 0.25  # exact in binary, like the hold
        for due in _due_polls(shaper, now):
            spoken += len("".join(shaper.poll(due)).split())
        spoken += len("".join(shaper.feed(f"word{n} ", now=now)).split())
        # word k is whole (its space included) at k * 0.25 and due by k * 0.25 + 0.5
        assert spoken >= max(0, n - 1)
        assert spoken <= n + 1
    assert spoken + len("".join(shaper.flush()).split()) == 160


def _due_polls(shaper: SpeechShaper, until: float) -> list[float]:
    due = shaper.deadline()
    return [due] if due is not None and due <= until else []


# Realistic model prose: words, numbers, prices, abbreviations, clauses, lines.
_PIECES = st.sampled_from(
    [
        "the", "Hub", "router", "plan", "costs", "5", "30", "12.50", "$45/mo", "20%",
        "Dr.", "e.g.", "i.e.", "St.", "call", "us", "today", "Wi-Fi", "support", "and",
        "but", "so", "please", "wait", "It", "We", "You", "24/7", "help@brightwave.example",
        "brightwave.example/help", "**Hub**", "`reset`", "*soft*",
    ]
)  # fmt: skip
_ENDS = st.sampled_from(
    [" ", " ", " ", ", ", ". ", "? ", "! ", "; ", " \u2014 ", ".\n", "\n", "\n- ", "\n2. "]
)


@st.composite
def prose(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.tuples(_PIECES, _ENDS), min_size=1, max_size=60))
    text = "".join(word + end for word, end in parts[:-1]) + parts[-1][0]
    return text + draw(st.sampled_from([".", ""]))


@st.composite
def token_split(draw: st.DrawFn, text: str) -> list[str]:
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=len(text))))
    bounds = [0, *[c for c in cuts if c < len(text)], len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


@given(st.data())
def test_any_token_split_yields_the_same_speech(data: st.DataObject) -> None:
    text = data.draw(prose())
    tokens = data.draw(token_split(text))
    assert "".join(shaped(tokens, max_chars=10_000)) == for_speech(text)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@given(st.data(), st.floats(0.05, 2.0))
def test_no_word_is_held_past_the_bound(data: st.DataObject, hold_s: float) -> None:
    text = data.draw(prose())
    # A number opening a line is a list marker, not speech: the count below would be off.
    assume(not re.search(r"(?:^|\n)\s*\d", text))
    tokens = data.draw(token_split(text))
    gaps = data.draw(st.lists(st.floats(0.0, 3.0), min_size=len(tokens), max_size=len(tokens)))
    shaper = SpeechShaper(hold_s=hold_s)
    out: list[str] = []
    received = ""
    completed: list[tuple[int, float]] = []  # (words complete, since when)
    now = 0.0

    def check(at: float) -> None:
        due = [count for count, since in completed if since + hold_s <= at]
        if due:
            assert len(_words("".join(out))) >= len(_words(for_speech(received[: due[-1]])))

    for token, gap in zip(tokens, gaps, strict=True):
        arrive = now + gap
        while (due := shaper.deadline()) is not None and due <= arrive:
            now = max(now, due)
            out += shaper.poll(now)
            check(now)
        now = arrive
        received += token
        end = _complete_prefix(received)
        if end and (not completed or completed[-1][0] < end):
            completed.append((end, now))
        out += shaper.feed(token, now=now)
        check(now)
    out += shaper.flush()
    assert _words("".join(out)) == _words(for_speech(text))


def _complete_prefix(text: str) -> int:
    """Length of the prefix made of whole words (followed by a space or line break)."""
    match = re.search(r"\s(?=\S*$)", text)
    return match.start() if match else 0


def test_shape_stream_speaks_held_words_while_the_model_stalls() -> None:
    import asyncio

    from warmline.agent.speech import shape_stream

    async def scenario() -> list[str]:
        resume = asyncio.Event()

        async def model() -> Any:
            yield "First, unplug the Hub "
            await asyncio.wait_for(resume.wait(), 10)  # the model thinks (bounded)
            yield "and wait. Then"
            yield " plug it in."

        heard: list[str] = []
        async for chunk in shape_stream(model(), hold_s=0.05):
            heard.append(chunk)
            if len(heard) == 1:
                assert not resume.is_set()  # spoken while the model was still stalled
                resume.set()
        return heard

    heard = asyncio.run(scenario())
    assert heard[0] == "First, unplug the Hub"
    assert "".join(heard) == "First, unplug the Hub and wait. Then plug it in."
