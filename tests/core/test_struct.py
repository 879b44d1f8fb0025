"""``Struct``: the frozen, slotted value base of the hot path's events and messages."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable

import pytest

from warmline.core._struct import Struct, init_fields


class Point(Struct):
    __slots__ = ("x", "y")
    x: int
    y: list[int]

    def __init__(self, x: int, y: list[int] | None = None) -> None:
        init_fields(self, x=x, y=[] if y is None else y)


class Other(Struct):
    __slots__ = ("x", "y")
    x: int
    y: list[int]

    def __init__(self, x: int, y: list[int] | None = None) -> None:
        init_fields(self, x=x, y=[] if y is None else y)


def test_fields_are_set_by_init_and_frozen_after() -> None:
    point = Point(1, [2])
    assert (point.x, point.y) == (1, [2])
    with pytest.raises(AttributeError, match="Point is immutable"):
        point.x = 3
    with pytest.raises(AttributeError, match="Point is immutable"):
        del point.x
    assert point.x == 1


def test_equality_is_by_type_and_values() -> None:
    assert Point(1, [2]) == Point(1, [2])
    assert Point(1, [2]) != Point(1, [3])
    assert Point(1) != Other(1)
    assert Point(1).__eq__(Other(1)) is NotImplemented


def test_hash_follows_equality_for_hashable_values() -> None:
    class Pair(Struct):
        __slots__ = ("a", "b")

        def __init__(self, a: int, b: str) -> None:
            init_fields(self, a=a, b=b)

    assert hash(Pair(1, "b")) == hash(Pair(1, "b"))
    assert len({Pair(1, "b"), Pair(1, "b"), Pair(2, "b")}) == 2


def test_repr_names_the_class_and_every_field() -> None:
    assert repr(Point(1, [2])) == "Point(x=1, y=[2])"


def test_replace_builds_a_new_instance_through_init() -> None:
    point = Point(1, [2])
    moved = point.replace(x=5)
    assert moved == Point(5, [2]) and point == Point(1, [2])
    with pytest.raises(TypeError, match=r"Point has no field\(s\) \['z'\]"):
        point.replace(z=1)


@pytest.mark.parametrize(
    "clone",
    [copy.copy, copy.deepcopy, lambda p: pickle.loads(pickle.dumps(p))],
    ids=["copy", "deepcopy", "pickle"],
)
def test_copy_and_pickle_rebuild_an_equal_frozen_instance(clone: Callable[[Point], Point]) -> None:
    point = Point(1, [2])
    twin = clone(point)
    assert twin == point and type(twin) is Point
    with pytest.raises(AttributeError, match="immutable"):
        twin.x = 3
