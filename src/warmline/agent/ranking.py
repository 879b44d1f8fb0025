"""Dense retrieval's pieces: the embeddings provider interface and hybrid ranking.

Lexical BM25 (SQLite FTS5, :mod:`warmline.agent.kb`) is the default because it costs
nothing to import. Embeddings find what shares meaning but no words ("is it pricey" ->
the price entry); they need a provider (an OpenAI-compatible ``/embeddings`` endpoint,
Amazon Bedrock), which lives behind an extra and imports its client lazily. Document
vectors are computed once, at ``warmline kb build`` time; at query time one vector is
computed for the question and compared with every document (a sample FAQ has ~100
entries, so pure Python is fast enough and numpy stays out of the cold start).

The two rankings are merged with reciprocal rank fusion (Cormack, Clarke and Buettcher,
SIGIR 2009): it needs no score calibration between BM25 and cosine similarity, which
live on unrelated scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["RRF_K", "Embeddings", "cosine", "reciprocal_rank_fusion"]

#: Reciprocal rank fusion constant (Cormack et al. 2009 use k = 60).
RRF_K = 60


class Embeddings(Protocol):
    """A dense embeddings provider (OpenAI-compatible ``/embeddings``, Bedrock, ...).

    Providers live outside this module and import their HTTP client lazily; the index
    only stores what they return.
    """

    @property
    def model(self) -> str:
        """The model id, stored in the index: query vectors must come from the same one."""
        ...

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order, all of the same dimension."""
        ...


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K
) -> list[tuple[str, float]]:
    """Merge ranked id lists: each id scores ``sum(1 / (k + rank))`` over the lists.

    Ranks start at 1. Ties keep the order of first appearance (deterministic).

    Returns:
        ``(id, score)`` pairs, best first.
    """
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, 1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    order = {doc_id: n for n, doc_id in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0.0 when either vector is all zeros."""
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = sum(x * x for x in a) ** 0.5
    nb = sum(y * y for y in b) ** 0.5
    return dot / (na * nb) if na and nb else 0.0
