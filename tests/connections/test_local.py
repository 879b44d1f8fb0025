"""``LocalConnections``: the in-process ``@connections`` stand-in keeps API Gateway's rules."""

from __future__ import annotations

import re
import threading

import pytest

from warmline.connections.local import LocalConnections
from warmline.core.limits import MAX_POST_BYTES
from warmline.errors import (
    ConnectionGoneError,
    PayloadTooLargeError,
    ThrottledError,
)
from warmline.testing import modules_after
from warmline.types import ConnectionClient, ConnectionInfo


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_it_is_a_connection_client() -> None:
    assert isinstance(LocalConnections(), ConnectionClient)


def test_posts_are_recorded_per_connection_in_order() -> None:
    conns = LocalConnections()
    a, b = conns.open("a"), conns.open("b")
    conns.post(a, "one")
    conns.post(b, b"\x00bin")
    conns.post(a, '{"type": "text", "token": "hé"}')
    assert conns.sent(a) == [b"one", '{"type": "text", "token": "hé"}'.encode()]
    assert conns.sent(b) == [b"\x00bin"]
    assert conns.sent_text(a) == ["one", '{"type": "text", "token": "hé"}']
    assert conns.posts == [("a", b"one"), ("b", b"\x00bin"), ("a", conns.sent(a)[1])]


def test_sent_json_parses_each_message() -> None:
    conns = LocalConnections()
    cid = conns.open()
    conns.post(cid, '{"type": "text", "token": "hé", "last": false}')
    conns.post(cid, b'{"type": "end"}')
    assert conns.sent_json(cid) == [
        {"type": "text", "token": "hé", "last": False},
        {"type": "end"},
    ]


def test_unknown_ids_are_gone() -> None:
    conns = LocalConnections()
    with pytest.raises(ConnectionGoneError) as info:
        conns.post("nobody", "x")
    assert info.value.status == 410
    with pytest.raises(ConnectionGoneError):
        conns.get("nobody")
    with pytest.raises(ConnectionGoneError):
        conns.delete("nobody")
    assert conns.sent("nobody") == []


def test_a_closed_connection_is_gone_but_keeps_what_was_sent() -> None:
    conns = LocalConnections()
    cid = conns.open("c1")
    conns.post(cid, "before")
    conns.close(cid)
    assert not conns.is_open(cid)
    with pytest.raises(ConnectionGoneError):
        conns.post(cid, "after")
    assert conns.sent(cid) == [b"before"]


def test_delete_closes_and_a_second_delete_is_gone() -> None:
    conns = LocalConnections()
    cid = conns.open()
    conns.delete(cid)
    assert not conns.is_open(cid)
    with pytest.raises(ConnectionGoneError):
        conns.delete(cid)


def test_reopening_an_id_starts_a_new_connection() -> None:
    conns = LocalConnections()
    conns.open("c1")
    conns.post("c1", "old")
    conns.close("c1")
    conns.open("c1")
    conns.post("c1", "new")
    assert conns.sent("c1") == [b"new"]


def test_the_post_limit_is_enforced_and_nothing_is_delivered() -> None:
    conns = LocalConnections()
    cid = conns.open()
    conns.post(cid, b"x" * MAX_POST_BYTES)
    with pytest.raises(PayloadTooLargeError) as info:
        conns.post(cid, b"x" * (MAX_POST_BYTES + 1))
    assert info.value.status == 413
    with pytest.raises(PayloadTooLargeError):
        conns.post(cid, "é" * (MAX_POST_BYTES // 2 + 1))  # counted in UTF-8 bytes
    assert len(conns.sent(cid)) == 1


def test_get_answers_iso_timestamps_and_identity() -> None:
    clock = Clock(1_767_225_599.25)  # 2025-12-31T23:59:59.250Z
    conns = LocalConnections(clock=clock)
    cid = conns.open("c1", source_ip="203.0.113.9", user_agent="Twilio.TmeWs/1.0")
    clock.now += 0.75
    conns.post(cid, "x")
    assert conns.get(cid) == ConnectionInfo(
        connected_at="2025-12-31T23:59:59.250Z",
        last_active_at="2026-01-01T00:00:00.000Z",
        source_ip="203.0.113.9",
        user_agent="Twilio.TmeWs/1.0",
    )


def test_generated_ids_look_like_api_gateway_ids() -> None:
    conns = LocalConnections()
    ids = {conns.open() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9+/]{14}==", cid) for cid in ids)


def test_injected_failures_are_raised_in_order() -> None:
    conns = LocalConnections()
    cid = conns.open()
    conns.fail_next(ThrottledError("slow down", status=429))
    conns.fail_next(ConnectionGoneError("gone", status=410))
    with pytest.raises(ThrottledError):
        conns.post(cid, "a")
    with pytest.raises(ConnectionGoneError):
        conns.get(cid)
    conns.post(cid, "b")
    assert conns.sent(cid) == [b"b"]


def test_posts_from_threads_are_all_kept() -> None:
    conns = LocalConnections()
    cid = conns.open()

    def worker(n: int) -> None:
        for i in range(200):
            conns.post(cid, f"{n}:{i}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    sent = conns.sent_text(cid)
    assert len(sent) == 800
    for n in range(4):  # each thread's posts stay in its own order
        assert [s for s in sent if s.startswith(f"{n}:")] == [f"{n}:{i}" for i in range(200)]


def test_repr_counts_open_connections_and_posts() -> None:
    conns = LocalConnections()
    conns.open("a")
    conns.open("b")
    conns.post("a", "x")
    conns.close("b")
    assert repr(conns) == "LocalConnections(open=1, posts=1)"


def test_importing_it_loads_no_http_tls_or_threading_module() -> None:
    loaded = modules_after("import warmline.connections.local")
    unwanted = {"http", "http.client", "ssl", "hashlib", "threading", "boto3", "botocore"}
    assert sorted(unwanted.intersection(loaded)) == []
