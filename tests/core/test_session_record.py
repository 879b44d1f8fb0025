"""SessionRecord: defaults, expiry relative to a ``now`` the caller passes, and evolve."""

from __future__ import annotations

import pytest

from warmline.core.session import DEFAULT_TTL_S, SessionRecord


def test_a_new_record_has_never_been_stored_and_never_expires() -> None:
    record = SessionRecord("S1")
    assert record.session_id == "S1"
    assert record.connection_id == ""
    assert record.call_sid is None
    assert record.version == 0
    assert record.expires_at == 0
    assert record.turn == 0
    assert record.data == {}


def test_every_field_is_set_from_its_argument() -> None:
    record = SessionRecord(
        "S1", connection_id="C1", call_sid="CA1", version=3, expires_at=99, turn=2, data={"a": 1}
    )
    assert (record.connection_id, record.call_sid, record.version) == ("C1", "CA1", 3)
    assert (record.expires_at, record.turn, record.data) == (99, 2, {"a": 1})


def test_records_without_data_do_not_share_one_dict() -> None:
    a, b = SessionRecord("A"), SessionRecord("B")
    a.data["x"] = 1
    assert b.data == {}


def test_sessions_outlive_api_gateways_two_hour_connections() -> None:
    assert DEFAULT_TTL_S == 3 * 60 * 60


@pytest.mark.parametrize("now", [0, 1, 1_700_000_000, 10**12])
def test_a_record_with_expires_at_0_never_expires(now: float) -> None:
    assert not SessionRecord("S", expires_at=0).is_expired(now)


@pytest.mark.parametrize(
    ("now", "expired"),
    [(999, False), (999.999, False), (1000, True), (1000.5, True), (5000, True)],
)
def test_a_record_is_expired_from_its_expires_at_on(now: float, expired: bool) -> None:
    assert SessionRecord("S", expires_at=1000).is_expired(now) is expired


def test_a_record_expiring_at_1_is_expired_at_1() -> None:
    # The smallest real expiry: the "0 means never" rule must not swallow it.
    assert SessionRecord("S", expires_at=1).is_expired(1)
    assert not SessionRecord("S", expires_at=1).is_expired(0.5)


def test_evolve_changes_the_named_fields_and_keeps_the_rest() -> None:
    record = SessionRecord("S", connection_id="C", version=4, expires_at=50, data={"k": "v"})
    evolved = record.evolve(turn=3, data={"k": "w"})
    assert isinstance(evolved, SessionRecord)
    assert evolved == SessionRecord(
        "S", connection_id="C", version=4, expires_at=50, turn=3, data={"k": "w"}
    )
    assert record.turn == 0 and record.data == {"k": "v"}


def test_evolve_refuses_an_unknown_field() -> None:
    with pytest.raises(TypeError, match="no field"):
        SessionRecord("S").evolve(colour="red")
