"""Retrieval quality on the shipped FAQ: paraphrases find their entry; off-topic does not.

The paraphrases are worded the way callers speak, not copied from the questions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from warmline.agent.kb import DEFAULT_SOURCE, Retriever, close_indexes, load_entries


@pytest.fixture(scope="module")
def retriever() -> Iterator[Retriever]:
    yield Retriever()
    close_indexes()


TOP_1 = [
    ("what time does your phone support open", "support-hours"),
    ("what number do I call for help", "support-phone"),
    ("what's your fastest plan", "plan-surge-2-gig"),
    ("how do I reboot my modem", "restart-router"),
    ("is there a limit on how much data I can use", "data-cap"),
    ("I forgot my wifi password where can I find it", "wifi-password-find"),
    ("how can I change the password for my wi-fi", "wifi-password-change"),
    ("what happens if I pay late", "late-fee"),
    ("my internet keeps dropping out", "dropping-connection"),
    ("I'm moving to a new apartment next month", "moving"),
    ("I want to cancel my service", "cancel-service"),
    ("is there an outage near me", "outage-check"),
    ("how do I return the router after I cancel", "return-equipment"),
    ("do you have a discount for veterans", "military-discount"),
    ("can I use my own router", "own-router"),
    ("how much is professional installation", "install-cost"),
    ("how long will the install take", "install-duration"),
    ("do I need a contract", "no-contract"),
    ("do you have a cheap plan for low income families", "access-plan"),
    ("how do I set up parental controls for my kids", "parental-controls"),
    ("my game keeps lagging", "gaming-lag"),
    ("what does a blinking blue light mean", "hub-lights"),
    ("how do I make a guest network for visitors", "guest-network"),
    ("am I speaking to a robot", "automated-assistant"),
    ("do you sell my personal information", "privacy"),
    ("how do I reset the router to factory defaults", "factory-reset"),
    ("where is your nearest store and when is it open", "store-hours"),
    ("can I get a static IP", "static-ip"),
    ("how do I update my credit card", "update-card"),
    ("the internet is not working at all", "internet-down"),
    ("do you offer tv", "tv-service"),
    ("how do I run a speed test", "speed-test"),
    ("I can't afford my bill this month", "payment-extension"),
    ("my zoom calls are freezing", "video-calls"),
    ("can I get money off for setting up automatic payments", "autopay-discount"),
]

TOP_3 = [
    ("how much does the one gig plan cost per month", "plan-flow-1-gig"),
    ("what plans do you have", "plans-overview"),
    ("when do I have to pay my bill", "bill-due-date"),
    ("the light on my router is orange", "orange-light"),
    ("can I pause my internet while I'm on vacation", "pause-service"),
]

OFF_TOPIC = [
    "do you sell pizza",
    "what is the weather in paris",
    "who won the game last night",
    "can I bring my dog to the store",
    "how do I cook pasta",
    "how tall is the eiffel tower",
    "tell me a joke",
    "what's the best restaurant nearby",
    "can you book me a flight to chicago",
    "how do I fix my car's brakes",
    "what is the meaning of life",
    "can you recommend a good movie",
    "how old are you",
    "what is two plus two",
    "play some music",
]


def test_every_expected_id_exists() -> None:
    ids = {e.id for e in load_entries(DEFAULT_SOURCE)}
    assert {want for _, want in TOP_1 + TOP_3} <= ids


@pytest.mark.parametrize(("question", "expected"), TOP_1)
def test_a_paraphrase_finds_its_entry_first_and_is_trusted(
    retriever: Retriever, question: str, expected: str
) -> None:
    hits = retriever.search(question)
    assert hits and hits[0].id == expected, [h.id for h in hits]
    assert retriever.confident(hits)


@pytest.mark.parametrize(("question", "expected"), TOP_3)
def test_a_paraphrase_finds_its_entry_in_the_top_three(
    retriever: Retriever, question: str, expected: str
) -> None:
    hits = retriever.search(question, limit=3)
    assert expected in [h.id for h in hits]
    assert retriever.confident(hits)


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_an_off_topic_question_is_below_the_threshold(retriever: Retriever, question: str) -> None:
    assert not retriever.confident(retriever.search(question))


def test_a_stricter_threshold_rejects_what_the_default_accepts(retriever: Retriever) -> None:
    hits = retriever.search("do I need a contract")
    assert retriever.confident(hits)
    strict = Retriever(min_score=2 * hits[0].score + 1)
    assert not strict.confident(strict.search("do I need a contract"))


# Held out: written after the FAQ, stop words and synonyms were tuned, and not tuned on.
# Measured at 25/30 first and 28/30 in the top three; the floors leave a small margin.
HELD_OUT = [
    ("how much do you charge for the basic plan", "plan-basic-100"),
    ("what speeds does spark 300 give me", "plan-spark-300"),
    ("is there a fee if I cancel early", "no-contract"),
    ("can I keep my landline number", "home-phone"),
    ("my bill is wrong", "billing-dispute"),
    ("how do I pay online", "payment-methods"),
    ("do you have a senior citizen discount", "senior-discount"),
    ("I am a student is there a deal", "student-discount"),
    ("whats the wifi password", "wifi-password-find"),
    ("how do I rename my network", "wifi-name-change"),
    ("kids are on the internet too late at night", "parental-controls"),
    ("there is a dead spot upstairs", "weak-wifi"),
    ("how do I open a port for my game server", "port-forwarding"),
    ("the technician is late", "technician-late"),
    ("do I need to be there when the installer comes", "install-be-home"),
    ("my payment didn't go through", "payment-confirmation"),
    ("can I get paper bills", "paperless"),
    ("when will I get my refund", "refund-time"),
    ("how do I add my wife to the account", "authorized-user"),
    ("is my browsing history private", "privacy"),
    ("are you hiring", "jobs"),
    ("what is a gig", "gig-meaning"),
    ("do you have fiber internet", "fiber-what"),
    ("my internet went out after the storm and power came back", "after-power-outage"),
    ("how many devices can connect to the hub", "device-limit"),
    ("where do I download your app", "app-download"),
    ("someone called me pretending to be you", "scam-calls"),
    ("can I change the day my bill is due", "change-due-date"),
    ("do you check credit", "deposit"),
    ("how do I turn off marketing emails", "marketing-emails"),
]


def test_held_out_paraphrases_mostly_find_their_entry(retriever: Retriever) -> None:
    ranked = [[h.id for h in retriever.search(q, limit=3)] for q, _ in HELD_OUT]
    first = sum(
        bool(ids) and ids[0] == want for ids, (_, want) in zip(ranked, HELD_OUT, strict=True)
    )
    top3 = sum(want in ids for ids, (_, want) in zip(ranked, HELD_OUT, strict=True))
    assert first >= 24, first
    assert top3 >= 27, top3
