"""Turn claims: create-once, duplicates, leases, takeover, lost claims, and the payload schema."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from warmline.errors import InvalidEventError
from warmline.offload.claims import ClaimLostError, TurnBusyError, TurnClaims, claim_key
from warmline.offload.payload import MAX_TURN_PAYLOAD_BYTES, TurnPayload, is_turn_payload
from warmline.stores.sqlite import SQLiteStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "claims.sqlite3")
    yield s
    s.close()


class Wall:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_first_claim_wins_and_a_live_claim_is_busy(store: SQLiteStore) -> None:
    wall = Wall()
    a = TurnClaims(store, owner="a", lease_s=30, wall=wall)
    b = TurnClaims(store, owner="b", lease_s=30, wall=wall)
    claim = a.acquire("S1", 3)
    assert claim.status == "new" and claim.sent == 0 and claim.owner.startswith("a/")
    with pytest.raises(TurnBusyError):
        b.acquire("S1", 3)
    with pytest.raises(TurnBusyError):
        a.acquire("S1", 3)  # a second delivery in the same process is another holder
    assert b.acquire("S1", 4).status == "new"  # another turn is another claim


def test_an_expired_claim_is_taken_over_and_the_old_holder_stops(store: SQLiteStore) -> None:
    wall = Wall()
    a = TurnClaims(store, owner="a", lease_s=30, wall=wall)
    b = TurnClaims(store, owner="b", lease_s=30, wall=wall)
    claim_a = a.progress(a.acquire("S1", 1), sent=42, posts=3)
    wall.now += 31  # a went silent past its lease (it died, or stalled)
    claim_b = b.acquire("S1", 1)
    assert claim_b.status == "resumed" and claim_b.sent == 42 and claim_b.posts == 3
    with pytest.raises(ClaimLostError):
        a.progress(claim_a, sent=50, posts=4)
    claim_b = b.finish(b.progress(claim_b, sent=99, posts=5), "done")
    stored = store.get(claim_key("S1", 1))
    assert stored is not None and stored.data["sent"] == 99 and stored.data["state"] == "done"
    assert b.acquire("S1", 1).status == "duplicate"


def test_progress_renews_the_lease(store: SQLiteStore) -> None:
    wall = Wall()
    a = TurnClaims(store, owner="a", lease_s=30, wall=wall)
    b = TurnClaims(store, owner="b", lease_s=30, wall=wall)
    claim = a.acquire("S1", 1)
    for _ in range(5):
        wall.now += 20
        claim = a.progress(claim, sent=claim.sent + 10)
    with pytest.raises(TurnBusyError):
        b.acquire("S1", 1)  # 100 s after the claim, still alive: it kept posting


def test_a_released_claim_is_taken_at_once(store: SQLiteStore) -> None:
    wall = Wall()
    a = TurnClaims(store, owner="a", lease_s=30, wall=wall)
    claim = a.release(a.progress(a.acquire("S1", 1), sent=7, filler=True))
    again = TurnClaims(store, owner="b", wall=wall).acquire("S1", 1)
    assert again.status == "resumed" and again.sent == 7 and again.filler_sent
    assert claim.data["leaseUntil"] == 0


def test_payload_round_trips_and_keeps_unknown_fields() -> None:
    payload = TurnPayload(
        "C=1", "VX1", 7, prompt="héllo", lang="en-US", domain_name="d", stage="prod"
    )
    doc = json.loads(payload.to_json())
    assert doc["kind"] == "warmline.turn" and doc["v"] == 1 and is_turn_payload(doc)
    doc["traceId"] = "abc"
    back = TurnPayload.from_dict(doc)
    assert back == payload and back.extra == {"traceId": "abc"}
    assert back.key == "VX1#7"
    assert TurnPayload.from_dict(back.to_dict()).extra == {"traceId": "abc"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "other"}, "not a turn payload"),
        ({"v": 2}, "newer"),
        ({"v": "1"}, "v must be"),
        ({"connectionId": ""}, "connectionId"),
        ({"sessionId": 5}, "sessionId"),
        ({"turn": -1}, "turn"),
        ({"turn": True}, "turn"),
        ({"prompt": None}, "prompt"),
        ({"createdAt": float("nan")}, "createdAt"),
    ],
)
def test_malformed_payloads_raise_a_clear_error(change: dict[str, object], message: str) -> None:
    doc = TurnPayload("C1", "S1", 1).to_dict()
    doc.update(change)
    with pytest.raises(InvalidEventError, match=message):
        TurnPayload.from_dict(doc)


def test_payload_size_is_bounded() -> None:
    with pytest.raises(InvalidEventError, match="bytes"):
        TurnPayload("C1", "S1", 1, prompt="x" * MAX_TURN_PAYLOAD_BYTES).to_json()
    with pytest.raises(InvalidEventError, match="JSON object"):
        TurnPayload.from_dict(["not", "an", "object"])
