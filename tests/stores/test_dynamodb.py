"""DynamoDBStore against a real moto server through boto3: the conformance suite and more."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("conformance")

from conformance import ProcessSpec, StoreConformance, StoreFactory  # noqa: E402
from moto_server import ENV, moto_server  # noqa: E402

from warmline.core.session import SessionRecord  # noqa: E402
from warmline.errors import StoreError, StoreUnavailableError  # noqa: E402
from warmline.stores.dynamodb import DynamoDBStore  # noqa: E402
from warmline.types import SessionStore  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    saved = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    with moto_server() as url:
        yield url
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def table(endpoint: str) -> str:
    name = f"sessions-{uuid.uuid4().hex[:8]}"
    DynamoDBStore(name, endpoint_url=endpoint, region_name="us-east-1").create_table()
    return name


class TestDynamoDBStore(StoreConformance):
    @pytest.fixture
    def store_factory(self, endpoint: str, table: str) -> StoreFactory:
        def make(*, clock: Callable[[], float], ttl_s: int) -> SessionStore:
            return DynamoDBStore(
                table, endpoint_url=endpoint, region_name="us-east-1", clock=clock, ttl_s=ttl_s
            )

        return make

    @pytest.fixture
    def process_spec(self, endpoint: str, table: str) -> ProcessSpec:
        return ProcessSpec(
            "warmline.stores.dynamodb:DynamoDBStore",
            {"table_name": table, "endpoint_url": endpoint, "region_name": "us-east-1"},
            env=dict(ENV),
            increments=30,
        )


def test_create_table_sets_ttl_on_expires_at(endpoint: str, table: str) -> None:
    store = DynamoDBStore(table, endpoint_url=endpoint, region_name="us-east-1")
    ttl = store.client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")
    store.create_table()  # idempotent


def test_an_expired_item_still_in_the_table_is_never_returned(endpoint: str, table: str) -> None:
    """DynamoDB's TTL deletes days later; moto keeps the item too: the read filter hides it."""
    now = [1_700_000_000.0]
    store = DynamoDBStore(
        table, endpoint_url=endpoint, region_name="us-east-1", clock=lambda: now[0], ttl_s=10
    )
    store.put(SessionRecord("S1", connection_id="C1", call_sid="CA1"))
    now[0] += 11
    raw = store.client.get_item(TableName=table, Key={"pk": {"S": "S#S1"}})
    assert "Item" in raw
    assert (store.get("S1"), store.by_connection("C1"), store.by_call_sid("CA1")) == (
        None,
        None,
        None,
    )


def test_a_corrupt_item_is_a_store_error(endpoint: str, table: str) -> None:
    store = DynamoDBStore(table, endpoint_url=endpoint, region_name="us-east-1")
    item: dict[str, Any] = {"pk": {"S": "S#bad"}, "session_id": {"S": "bad"}, "data": {"S": "{"}}
    store.client.put_item(TableName=table, Item=item)
    with pytest.raises(StoreError):
        store.get("bad")


def test_an_unreachable_endpoint_is_store_unavailable(tmp_path: Path) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "dynamodb",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(StoreUnavailableError):
        DynamoDBStore("t", client=client).get("S1")
