"""The knowledge base: an index built ahead of time, searched with SQLite FTS5 ``bm25()``.

Why SQLite FTS5 and not bm25s: the index is searched on the first prompt of a call, often in
a cold Lambda environment, so the ranking library's import cost is paid by a caller who is
waiting. ``import sqlite3`` costs a few milliseconds (and the default SQLite session store
loads it anyway); bm25s and numpy together cost about a quarter of a second, dozens of times
more, before the first search (``python -X importtime``). FTS5's ``bm25()`` is the same
Okapi BM25 (k1 = 1.2, b = 0.75) with per-column weights, and the Porter stemmer is built in,
so nothing else is needed.

The index file (``warmline kb build``) holds:

- ``meta``: schema version, tokenizer, column weights, entry count, SHA-256 of the source
  JSONL, and the embedding model and dimension when document vectors were computed;
- ``docs``: the entries (``id``, ``question``, ``answer``, ``tags`` as JSON);
- ``fts``: an external-content FTS5 table over ``docs`` (no second copy of the text);
- ``vectors``: optional float32 document vectors (dense retrieval).

At run time the file is opened read-only with ``immutable=1`` (no locks, no journal: the
Lambda code directory is read-only) on the first search and the connection is cached in a
module global, so every later invocation of a warm environment reuses it.

Queries are normalized before they reach FTS5 (lowercase, punctuation and stop words
dropped, each term quoted) and the terms are ORed: spoken questions are wordy and FTS5's
default is to require every term. ``bm25()`` returns "more negative is better"; hits carry
``-bm25`` so that a larger score is a better match, compared with ``min_score``.

Dense retrieval is optional: an :class:`Embeddings` provider computes document vectors at
build time; when the index has vectors and the :class:`Retriever` has a provider, the
lexical and dense rankings are merged with reciprocal rank fusion.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from warmline.agent.ranking import Embeddings, cosine, reciprocal_rank_fusion
from warmline.errors import ConfigurationError

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "DEFAULT_INDEX",
    "DEFAULT_MIN_COVERAGE",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_MIN_SIMILARITY",
    "DEFAULT_SOURCE",
    "Annotator",
    "BuildReport",
    "Entry",
    "Hit",
    "Retriever",
    "build_index",
    "close_indexes",
    "index_contents",
    "load_entries",
    "match_expression",
    "normalize_query",
    "query_groups",
]

_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
#: The sample knowledge base shipped with warmline (Brightwave Internet's support FAQ).
DEFAULT_SOURCE = os.path.join(_DATA, "faq.jsonl")
#: Its index, built by ``warmline kb build`` and shipped beside it.
DEFAULT_INDEX = os.path.join(_DATA, "faq.index.sqlite3")

SCHEMA_VERSION = 1
#: FTS5 tokenizer: Porter stemming over unicode61 ("plans" matches "plan").
TOKENIZER = "porter unicode61 remove_diacritics 2"
#: bm25() column weights: question, answer, tags. A match in the question counts most.
WEIGHTS = (4.0, 1.0, 2.0)
#: Below this top score (-bm25) the agent says it doesn't know (see Retriever.confident).
#: Calibrated on the sample FAQ (tests/agent/test_retrieval.py): trusted paraphrases
#: score 2.6-26 (below 5 only when every word is in the question), off-topic ones 0-8.6
#: but then the top entry holds at most half of their meaningful words.
DEFAULT_MIN_SCORE = 5.0
#: The top hit must contain more than this share of the question's meaningful words.
DEFAULT_MIN_COVERAGE = 0.51
#: Below this cosine similarity a dense-only match is not trusted either.
DEFAULT_MIN_SIMILARITY = 0.5

# Words that carry no topic. Spoken questions are full of them ("hi, um, can you tell me
# how I can ..."); with OR semantics they would match nearly every entry.
STOP_WORDS = frozenset(
    """a about above after again all am an and any are as at be because been before being
    below between both but by can could did do does doing during each few for from
    further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me more most my myself no nor not now of on once only or other
    our ours ourselves over she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we
    were what when where which while who whom why will with would you your yours yourself
    yourselves hi hello hey please thanks thank um uh uhm er okay ok yeah yes like know
    tell want wanted need needs get got wondering wonder question questions let lets much
    many also really actually maybe might may one something anything someone anyone thing
    things way go going im ive id dont doesnt cant isnt wont happen happens happened next
    near nearby brightwave isn aren wasn weren don doesn
    didn won wouldn couldn shouldn haven hasn""".split()
)

# Query-side synonyms: words callers say that the FAQ spells differently.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "modem": ("router", "hub"),
    "router": ("hub",),
    "wireless": ("wifi",),
    # The FAQ writes "Wi-Fi", which FTS5 indexes as the phrase "wi fi".
    "wifi": ("wi fi",),
    "reboot": ("restart",),
    "cost": ("price",),
    "costs": ("price",),
    "expensive": ("price",),
    "fee": ("charge",),
    "phone": ("call",),
    "gigabit": ("gig",),
    "speaking": ("talking",),
    "speak": ("talk",),
}

_APOSTROPHE = re.compile(r"['\u2019]\w*")
_WIFI = re.compile(r"\bwi[\s-]?fi\b")
_TERM = re.compile(r"[a-z0-9]+")


class Annotator(Protocol):
    """Anything with ``annotate(**fields)``: a :class:`~warmline.core.app.Context`."""

    def annotate(self, **fields: Any) -> None: ...


class Entry(NamedTuple):
    """One knowledge-base entry, as written in the JSONL source."""

    id: str
    question: str
    answer: str
    tags: tuple[str, ...] = ()


class Hit(NamedTuple):
    """A search result.

    Attributes:
        score: the ranking score (``-bm25`` lexically; the fused score in hybrid mode).
        lexical: ``-bm25`` when the entry matched lexically, else None.
        dense: cosine similarity to the query when dense retrieval ran, else None.
        coverage: the share of the query's meaningful words (a synonym counts for its
            word) found in the entry, from 0 to 1.
        question_coverage: the same share, counting only the entry's question.
    """

    id: str
    question: str
    answer: str
    tags: tuple[str, ...]
    score: float
    lexical: float | None = None
    dense: float | None = None
    coverage: float = 0.0
    question_coverage: float = 0.0


class BuildReport(NamedTuple):
    """What :func:`build_index` wrote."""

    path: str
    entries: int
    bytes: int
    vectors: bool


# --- source ----------------------------------------------------------------------------
def load_entries(path: str | os.PathLike[str]) -> list[Entry]:
    """Read and validate a JSONL knowledge base.

    Raises:
        ConfigurationError: a line is not a JSON object with string ``id``, ``question``
            and ``answer`` (and a list of strings as ``tags``), or an id repeats.
    """
    entries: list[Entry] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{os.fspath(path)}:{number}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{where}: not JSON ({exc})") from exc
            if not isinstance(raw, dict):
                raise ConfigurationError(f"{where}: not a JSON object")
            fields = [raw.get(k) for k in ("id", "question", "answer")]
            if not all(isinstance(v, str) and v.strip() for v in fields):
                raise ConfigurationError(f"{where}: id, question and answer must be strings")
            tags = raw.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ConfigurationError(f"{where}: tags must be a list of strings")
            entry = Entry(raw["id"], raw["question"], raw["answer"], tuple(tags))
            if entry.id in seen:
                raise ConfigurationError(f"{where}: duplicate id {entry.id!r}")
            seen.add(entry.id)
            entries.append(entry)
    return entries


# --- queries ---------------------------------------------------------------------------
def query_groups(text: str) -> list[tuple[str, ...]]:
    """The words of a spoken question that carry meaning, each with its synonyms.

    Lowercased, ``wi-fi`` spelled ``wifi``, possessives and contractions cut at the
    apostrophe, punctuation dropped, stop words and repeats dropped.
    """
    text = _WIFI.sub("wifi", text.lower())
    text = _APOSTROPHE.sub("", text)
    groups: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for word in _TERM.findall(text):
        if word in seen or word in STOP_WORDS or (len(word) == 1 and not word.isdigit()):
            continue
        seen.add(word)
        groups.append((word, *_SYNONYMS.get(word, ())))
    return groups


def normalize_query(text: str) -> list[str]:
    """The search terms of a spoken question (words and synonyms), without duplicates."""
    terms: list[str] = []
    for group in query_groups(text):
        terms.extend(t for t in group if t not in terms)
    return terms


def match_expression(terms: Iterable[str]) -> str:
    """An FTS5 MATCH expression that ORs ``terms``, each quoted (no FTS5 syntax leaks)."""
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


# --- build -----------------------------------------------------------------------------
def build_index(
    source: str | os.PathLike[str] = DEFAULT_SOURCE,
    out: str | os.PathLike[str] = DEFAULT_INDEX,
    *,
    embeddings: Embeddings | None = None,
) -> BuildReport:
    """Build the search index for a JSONL knowledge base (``warmline kb build``).

    Written to a temporary file and renamed into place, so a reader never sees half an
    index.

    Args:
        source: the JSONL file.
        out: the index file to write.
        embeddings: computes document vectors (dense retrieval) when given.

    Raises:
        ConfigurationError: the source is invalid or the provider returned bad vectors.
    """
    import hashlib
    import sqlite3
    from array import array

    entries = load_entries(source)
    with open(source, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    vectors: list[list[float]] = []
    if embeddings is not None:
        vectors = embeddings.embed([f"{e.question}\n{e.answer}" for e in entries])
        dims = {len(v) for v in vectors}
        if len(vectors) != len(entries) or len(dims) != 1 or 0 in dims:
            raise ConfigurationError("the embeddings provider returned bad vectors")
    out_path = os.fspath(out)
    tmp = out_path + ".tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    db = sqlite3.connect(tmp)
    try:
        db.execute("PRAGMA page_size = 1024")
        db.executescript(
            f"""
            CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE docs(rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,
                              question TEXT NOT NULL, answer TEXT NOT NULL,
                              tags TEXT NOT NULL);
            CREATE VIRTUAL TABLE fts USING fts5(question, answer, tags,
                content='docs', content_rowid='rowid', tokenize='{TOKENIZER}');
            CREATE TABLE vectors(rowid INTEGER PRIMARY KEY, vec BLOB NOT NULL);
            """
        )
        db.executemany(
            "INSERT INTO docs(rowid, id, question, answer, tags) VALUES (?, ?, ?, ?, ?)",
            [
                (n, e.id, e.question, e.answer, json.dumps(list(e.tags)))
                for n, e in enumerate(entries, 1)
            ],
        )
        db.execute("INSERT INTO fts(fts) VALUES ('rebuild')")
        db.execute("INSERT INTO fts(fts) VALUES ('optimize')")
        if vectors:
            db.executemany(
                "INSERT INTO vectors(rowid, vec) VALUES (?, ?)",
                [(n, array("f", v).tobytes()) for n, v in enumerate(vectors, 1)],
            )
        meta = {
            "schema": str(SCHEMA_VERSION),
            "tokenizer": TOKENIZER,
            "weights": json.dumps(WEIGHTS),
            "entries": str(len(entries)),
            "source_sha256": digest,
        }
        if embeddings is not None:
            meta["embedding_model"] = embeddings.model
            meta["embedding_dim"] = str(len(vectors[0]))
        db.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", sorted(meta.items()))
        db.commit()
        db.execute("VACUUM")
    finally:
        db.close()
    os.replace(tmp, out_path)
    return BuildReport(out_path, len(entries), os.path.getsize(out_path), bool(vectors))


def index_contents(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What an index holds, independent of its bytes: meta, docs and vectors.

    Used to check that a shipped index matches its source.
    """
    db = _open(os.fspath(path))
    try:
        return {
            "meta": dict(db.execute("SELECT key, value FROM meta ORDER BY key")),
            "docs": db.execute(
                "SELECT rowid, id, question, answer, tags FROM docs ORDER BY rowid"
            ).fetchall(),
            "vectors": db.execute("SELECT rowid, vec FROM vectors ORDER BY rowid").fetchall(),
        }
    finally:
        db.close()


# --- the shipped index, opened once per environment -----------------------------------
_INDEXES: dict[str, sqlite3.Connection] = {}


def _open(path: str) -> sqlite3.Connection:
    import sqlite3
    from urllib.parse import quote

    if not os.path.isfile(path):
        raise ConfigurationError(f"no knowledge-base index at {path}; run: warmline kb build")
    uri = "file:" + quote(os.path.abspath(path)) + "?mode=ro&immutable=1"
    try:
        return sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise ConfigurationError(f"cannot open the index {path}: {exc}") from exc


def _cached(path: str) -> sqlite3.Connection:
    db = _INDEXES.get(path)
    if db is None:
        db = _INDEXES[path] = _open(path)
    return db


def close_indexes() -> None:
    """Close every cached index connection (tests; Lambda never needs to)."""
    while _INDEXES:
        _, db = _INDEXES.popitem()
        db.close()


class Retriever:
    """Searches a knowledge-base index; opened on the first search, cached per process.

    Args:
        index_path: the index file (default: the shipped sample FAQ's).
        embeddings: a provider for query vectors; dense ranking runs when the index also
            has document vectors from the same model.
        min_score: the top ``-bm25`` below which a result is not trusted.
        min_similarity: the top cosine similarity below which a dense match is not trusted.
        min_coverage: the share of the question's words the top hit must contain.
        limit: hits returned by default.
    """

    def __init__(
        self,
        index_path: str | os.PathLike[str] | None = None,
        *,
        embeddings: Embeddings | None = None,
        min_score: float = DEFAULT_MIN_SCORE,
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
        min_coverage: float = DEFAULT_MIN_COVERAGE,
        limit: int = 3,
    ) -> None:
        self.index_path = os.path.abspath(os.fspath(index_path or DEFAULT_INDEX))
        self.embeddings = embeddings
        self.min_score = min_score
        self.min_similarity = min_similarity
        self.min_coverage = min_coverage
        self.limit = limit
        self._vectors: dict[int, list[float]] | None = None
        self._meta: dict[str, str] | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The read-only connection to the index (opened on first use, then cached)."""
        return _cached(self.index_path)

    def meta(self) -> dict[str, str]:
        """The index's ``meta`` table (read once)."""
        if self._meta is None:
            self._meta = dict(self.db.execute("SELECT key, value FROM meta"))
        return dict(self._meta)

    def search(
        self, query: str, *, limit: int | None = None, ctx: Annotator | None = None
    ) -> list[Hit]:
        """The best entries for ``query``, best first.

        Args:
            query: the caller's words.
            limit: hits to return (default: the retriever's ``limit``).
            ctx: gets ``hitCount``, ``topScore`` and ``topCoverage`` for the log line.
        """
        limit = self.limit if limit is None else limit
        groups = query_groups(query)
        dense = self._dense_ready()
        lexical = self._lexical(groups, max(limit, 20) if dense else limit)
        hits = self._hybrid(query, lexical, limit) if dense else lexical[:limit]
        hits = self._with_coverage(groups, hits)
        if ctx is not None:
            ctx.annotate(
                hitCount=len(hits),
                topScore=round(hits[0].score, 4) if hits else 0.0,
                topCoverage=round(hits[0].coverage, 3) if hits else 0.0,
            )
        return hits

    def confident(self, hits: Sequence[Hit]) -> bool:
        """True when the top hit is good enough to answer from.

        Lexically, either of:

        - its score reaches ``min_score`` and it contains more than half of the caller's
          meaningful words (so "do you sell pizza" does not answer from the privacy
          entry because "sell" matched);
        - its score reaches ``min_score / 2`` and its question contains every meaningful
          word (short questions with common words: "what plans do you have").

        Densely: its similarity reaches ``min_similarity``.
        """
        if not hits:
            return False
        top = hits[0]
        if top.dense is not None and top.dense >= self.min_similarity:
            return True
        if top.lexical is None:
            return False
        if top.lexical >= self.min_score and top.coverage >= self.min_coverage:
            return True
        return top.lexical >= self.min_score / 2 and top.question_coverage >= 1.0

    # --- internals ---------------------------------------------------------------------
    def _lexical(self, groups: list[tuple[str, ...]], limit: int) -> list[Hit]:
        terms: list[str] = []
        for group in groups:
            terms.extend(t for t in group if t not in terms)
        if not terms or limit <= 0:
            return []
        q, a, t = WEIGHTS
        rows = self.db.execute(
            f"""SELECT d.id, d.question, d.answer, d.tags, bm25(fts, {q}, {a}, {t}) AS rank
                FROM fts JOIN docs AS d ON d.rowid = fts.rowid
                WHERE fts MATCH ? ORDER BY rank, d.rowid LIMIT ?""",
            (match_expression(terms), limit),
        ).fetchall()
        return [
            Hit(i, qu, an, tuple(json.loads(tg)), -rank, lexical=-rank)
            for i, qu, an, tg, rank in rows
        ]

    def _with_coverage(self, groups: list[tuple[str, ...]], hits: list[Hit]) -> list[Hit]:
        """Set each hit's coverage: one FTS5 query per word group, over the hits only."""
        if not hits or not groups:
            return hits
        ids = [h.id for h in hits]
        marks = ",".join("?" * len(ids))
        anywhere = dict.fromkeys(ids, 0)
        in_question = dict.fromkeys(ids, 0)
        for group in groups:
            expression = match_expression(group)
            for counts, query in (
                (anywhere, expression),
                (in_question, f"question : ({expression})"),
            ):
                for (doc_id,) in self.db.execute(
                    f"""SELECT d.id FROM fts JOIN docs AS d ON d.rowid = fts.rowid
                        WHERE fts MATCH ? AND d.id IN ({marks})""",
                    (query, *ids),
                ):
                    counts[doc_id] += 1
        n = len(groups)
        return [
            h._replace(coverage=anywhere[h.id] / n, question_coverage=in_question[h.id] / n)
            for h in hits
        ]

    def _dense_ready(self) -> bool:
        if self.embeddings is None:
            return False
        meta = self.meta()
        model = meta.get("embedding_model")
        if model is None:
            return False
        if model != self.embeddings.model:
            raise ConfigurationError(
                f"the index's vectors come from {model!r}, the query embeddings from "
                f"{self.embeddings.model!r}; rebuild the index with the same model"
            )
        return True

    def _all_vectors(self) -> dict[int, list[float]]:
        if self._vectors is None:
            from array import array

            vectors: dict[int, list[float]] = {}
            for rowid, blob in self.db.execute("SELECT rowid, vec FROM vectors"):
                vec = array("f")
                vec.frombytes(blob)
                vectors[rowid] = vec.tolist()
            self._vectors = vectors
        return self._vectors

    def _hybrid(self, query: str, lexical: list[Hit], limit: int) -> list[Hit]:
        assert self.embeddings is not None
        (qvec,) = self.embeddings.embed([query])
        sims = {rowid: cosine(qvec, vec) for rowid, vec in self._all_vectors().items()}
        dense_rank = sorted(sims, key=lambda r: (-sims[r], r))[: max(limit, 20)]
        rows = {
            rowid: (i, qu, an, tg)
            for rowid, i, qu, an, tg in self.db.execute(
                "SELECT rowid, id, question, answer, tags FROM docs"
            )
        }
        rowid_of = {row[0]: rowid for rowid, row in rows.items()}
        lexical_by_id = {h.id: h for h in lexical}
        fused = reciprocal_rank_fusion([[h.id for h in lexical], [rows[r][0] for r in dense_rank]])
        hits: list[Hit] = []
        for doc_id, score in fused[:limit]:
            rowid = rowid_of[doc_id]
            i, qu, an, tg = rows[rowid]
            lex = lexical_by_id.get(doc_id)
            hits.append(
                Hit(
                    i,
                    qu,
                    an,
                    tuple(json.loads(tg)),
                    score,
                    lexical=lex.lexical if lex else None,
                    dense=sims[rowid],
                )
            )
        return hits
