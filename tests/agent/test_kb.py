"""The knowledge base: source validation, the shipped index, queries, dense and hybrid."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from warmline.agent import kb
from warmline.agent.kb import (
    DEFAULT_INDEX,
    DEFAULT_SOURCE,
    Retriever,
    build_index,
    close_indexes,
    index_contents,
    load_entries,
    match_expression,
    normalize_query,
)
from warmline.agent.ranking import cosine, reciprocal_rank_fusion
from warmline.agent.speech import for_speech
from warmline.errors import ConfigurationError


@pytest.fixture(autouse=True)
def _close_indexes() -> Iterator[None]:
    yield
    close_indexes()


class Notes:
    """Collects ``annotate`` fields, like a Context does."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}

    def annotate(self, **fields: Any) -> None:
        self.fields.update(fields)


def write_jsonl(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# --- the shipped sample ----------------------------------------------------------------
def test_the_shipped_index_is_up_to_date_with_the_jsonl(tmp_path: Path) -> None:
    rebuilt = build_index(DEFAULT_SOURCE, tmp_path / "faq.index.sqlite3")
    assert index_contents(DEFAULT_INDEX) == index_contents(rebuilt.path)


def test_the_shipped_index_is_small() -> None:
    assert Path(DEFAULT_INDEX).stat().st_size < 256 * 1024


def test_the_sample_faq_has_110_valid_entries_written_for_speech() -> None:
    entries = load_entries(DEFAULT_SOURCE)
    assert len(entries) >= 110
    assert len({e.id for e in entries}) == len(entries)
    for entry in entries:
        assert entry.tags, entry.id
        # Already speakable: the speech shaper has nothing to change.
        assert for_speech(entry.answer) == entry.answer, entry.id
        assert not any(ch in entry.answer for ch in "$%&*#[]_`"), entry.id


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"id": "a", "question": "q"}', "must be strings"),
        ('{"id": "a", "question": "q", "answer": "a", "tags": "x"}', "tags"),
    ],
)
def test_a_bad_source_line_is_reported_with_its_line_number(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "kb.jsonl"
    path.write_text('{"id": "ok", "question": "q", "answer": "a"}\n' + line + "\n")
    with pytest.raises(ConfigurationError, match=message) as info:
        load_entries(path)
    assert "kb.jsonl:2" in str(info.value)


def test_a_duplicate_id_is_rejected(tmp_path: Path) -> None:
    row = {"id": "same", "question": "q", "answer": "a"}
    with pytest.raises(ConfigurationError, match="duplicate"):
        build_index(write_jsonl(tmp_path / "kb.jsonl", [row, row]), tmp_path / "i.sqlite3")


def test_a_missing_index_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="warmline kb build"):
        Retriever(tmp_path / "nope.sqlite3").search("hours")


def test_a_rebuild_replaces_the_index_and_changes_its_contents(tmp_path: Path) -> None:
    source = write_jsonl(
        tmp_path / "kb.jsonl", [{"id": "a", "question": "Opening hours?", "answer": "Nine."}]
    )
    out = tmp_path / "kb.index.sqlite3"
    first = index_contents(build_index(source, out).path)
    write_jsonl(source, [{"id": "a", "question": "Opening hours?", "answer": "Ten."}])
    second = index_contents(build_index(source, out).path)
    assert first["docs"] != second["docs"]
    assert first["meta"]["source_sha256"] != second["meta"]["source_sha256"]
    assert not (tmp_path / "kb.index.sqlite3.tmp").exists()


# --- queries ---------------------------------------------------------------------------
def test_queries_are_lowercased_without_punctuation_or_stop_words() -> None:
    assert normalize_query("Hi! Um, what are your SUPPORT hours, please?") == [
        "support",
        "hours",
    ]


def test_wifi_spellings_and_apostrophes_are_normalized() -> None:
    terms = normalize_query("My Wi-Fi's password isn't working")
    assert terms[:2] == ["wifi", "wi fi"]
    assert "password" in terms and "working" in terms
    assert "isn" not in terms and "s" not in terms


def test_synonyms_are_added_once() -> None:
    assert normalize_query("modem router") == ["modem", "router", "hub"]


def test_match_expressions_or_quoted_terms_so_fts5_syntax_cannot_leak() -> None:
    assert match_expression(["near", 'a"b', "wi fi"]) == '"near" OR "a""b" OR "wi fi"'


def test_fts5_operators_in_a_question_are_plain_words() -> None:
    hits = Retriever().search('AND OR NOT NEAR( "hours" * support')
    assert hits and hits[0].id == "support-hours"


def test_a_question_of_only_stop_words_has_no_hits() -> None:
    notes = Notes()
    assert Retriever().search("um, can you tell me, what is it?", ctx=notes) == []
    assert notes.fields == {"hitCount": 0, "topScore": 0.0, "topCoverage": 0.0}


def test_search_annotates_hit_count_and_top_score() -> None:
    notes = Notes()
    hits = Retriever(limit=2).search("how do I reboot my modem", ctx=notes)
    assert notes.fields["hitCount"] == len(hits) == 2
    assert notes.fields["topScore"] == round(hits[0].score, 4)
    assert hits[0].score >= hits[1].score > 0
    assert hits[0].lexical == hits[0].score


def test_the_index_connection_is_opened_once_and_shared() -> None:
    import sqlite3

    a, b = Retriever(), Retriever()
    first = a.db
    assert first is b.db
    close_indexes()
    with pytest.raises(sqlite3.ProgrammingError):
        first.execute("SELECT 1")
    assert Retriever().db.execute("SELECT count(*) FROM docs").fetchone()[0] >= 110


def test_the_index_is_opened_read_only(tmp_path: Path) -> None:
    import sqlite3

    with pytest.raises(sqlite3.OperationalError):
        Retriever().db.execute("DELETE FROM docs")


# --- ranking ---------------------------------------------------------------------------
def test_reciprocal_rank_fusion_sums_reciprocal_ranks() -> None:
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=1))
    assert fused["a"] == pytest.approx(1 / 2 + 1 / 3)
    assert fused["c"] == pytest.approx(1 / 4 + 1 / 2)
    assert fused["b"] == pytest.approx(1 / 3)
    assert [d for d, _ in reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=1)] == [
        "a",
        "c",
        "b",
    ]


def test_fusion_ties_keep_first_appearance_order() -> None:
    assert [d for d, _ in reciprocal_rank_fusion([["x", "y"], ["y", "x"]])] == ["x", "y"]


def test_cosine() -> None:
    assert cosine([1, 0], [2, 0]) == pytest.approx(1.0)
    assert cosine([1, 0], [0, 3]) == pytest.approx(0.0)
    assert cosine([0, 0], [1, 1]) == 0.0


# --- dense and hybrid, with a deterministic fake embedding ----------------------------
CONCEPTS: dict[str, tuple[str, ...]] = {
    "money": ("price", "cost", "dollars", "pricey", "expensive", "afford"),
    "time": ("hours", "open", "close", "when"),
    "pet": ("dog", "cat", "pets", "puppy"),
    "network": ("wifi", "router", "signal", "internet"),
}


class ConceptEmbeddings:
    """A tiny deterministic 'model': one dimension per concept, counting its words."""

    def __init__(self, model: str = "concepts-v1") -> None:
        self._model = model
        self.calls: list[list[str]] = []

    @property
    def model(self) -> str:
        return self._model

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            words = normalize_query(text)
            out.append([float(sum(w in ws for w in words)) for ws in CONCEPTS.values()])
        return out


@pytest.fixture
def small_index(tmp_path: Path) -> Path:
    rows = [
        {"id": "price", "question": "How much is the plan?", "answer": "It costs 30 dollars."},
        {"id": "hours", "question": "When are you open?", "answer": "From 9 to 5."},
        {"id": "pets", "question": "Can I bring my dog?", "answer": "Dogs are welcome."},
        {"id": "wifi", "question": "My wifi is weak.", "answer": "Move the router."},
    ]
    source = write_jsonl(tmp_path / "small.jsonl", rows)
    out = tmp_path / "small.index.sqlite3"
    report = build_index(source, out, embeddings=ConceptEmbeddings())
    assert report.vectors and report.entries == 4
    return out


def test_vectors_and_the_model_are_stored_at_build_time(small_index: Path) -> None:
    contents = index_contents(small_index)
    assert contents["meta"]["embedding_model"] == "concepts-v1"
    assert contents["meta"]["embedding_dim"] == str(len(CONCEPTS))
    assert len(contents["vectors"]) == 4


def test_hybrid_search_finds_what_only_the_embedding_understands(small_index: Path) -> None:
    lexical = Retriever(small_index)
    assert lexical.search("is it pricey") == []  # no shared word
    hybrid = Retriever(small_index, embeddings=ConceptEmbeddings())
    hits = hybrid.search("is it pricey")
    assert hits[0].id == "price"
    assert hits[0].lexical is None and hits[0].dense == pytest.approx(1.0)
    assert hybrid.confident(hits)


def test_hybrid_search_fuses_both_rankings(small_index: Path) -> None:
    hits = Retriever(small_index, embeddings=ConceptEmbeddings()).search("dog price")
    assert [h.id for h in hits[:2]] == ["pets", "price"]
    # "pets" is 1st lexically ("dog") and 2nd densely (tied with "price", broken by row);
    # "price" is only found densely (its text says "costs", not "price").
    assert hits[0].score == pytest.approx(1 / 61 + 1 / 62)
    assert hits[1].score == pytest.approx(1 / 61)
    assert hits[0].lexical is not None and hits[1].lexical is None


def test_embeddings_from_another_model_are_refused(small_index: Path) -> None:
    with pytest.raises(ConfigurationError, match="same model"):
        Retriever(small_index, embeddings=ConceptEmbeddings("other")).search("price")


def test_an_index_without_vectors_ignores_the_embeddings() -> None:
    embeddings = ConceptEmbeddings()
    hits = Retriever(embeddings=embeddings).search("support hours")
    assert hits[0].id == "support-hours" and hits[0].dense is None
    assert embeddings.calls == []


def test_bad_vectors_from_a_provider_are_refused(tmp_path: Path) -> None:
    class Ragged(ConceptEmbeddings):
        def embed(self, texts: Sequence[str]) -> list[list[float]]:
            return [[1.0] * (n + 1) for n in range(len(texts))]

    source = write_jsonl(
        tmp_path / "kb.jsonl",
        [{"id": "a", "question": "q", "answer": "a"}, {"id": "b", "question": "q", "answer": "b"}],
    )
    with pytest.raises(ConfigurationError, match="bad vectors"):
        build_index(source, tmp_path / "i.sqlite3", embeddings=Ragged())


def test_the_module_docstring_records_the_import_measurement() -> None:
    doc = kb.__doc__ or ""
    assert "bm25s" in doc and "import sqlite3" in doc
