"""The ``[faults]`` table: which faults ``warmline dev`` injects, and when.

A voice backend is judged by what the caller hears when something fails, and the failures
that matter (a Lambda environment dying mid-answer, a throttled ``@connections`` post, a
store outage, an async event delivered twice or late, a caller whose network vanishes) are
rare on a laptop. Here they are switched on by name, from ``[faults]`` in ``warmline.toml``,
from ``warmline dev --fault NAME[=SPEC]`` or, while the emulator runs, with
``PUT /_warmline/faults`` (same shape as the table, as JSON)::

    [faults]
    seed = 7                              # the same seed injects the same faults
    connections.throttle = 0.1            # a rate: 10% of posts answered 429
    lambda.kill = { ms = 150, count = 1 } # kill one environment 150 ms into an invocation
    store.fail = { after = 4, count = 1, functions = ["agent"] }

Every fault is a :class:`Trigger`: of the chances it gets (posts, invocations, deliveries),
the first ``after`` are spared, then each fires with probability ``rate`` until it has fired
``count`` times. What each fault does is in :data:`FAULTS`. This module is the plan, read
and checked with the rest of the config; the emulator's
:class:`~warmline.dev.faults.FaultInjector` fires it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from warmline.config.keys import allowed
from warmline.errors import ConfigurationError

__all__ = ["FAULTS", "FaultPlan", "Trigger", "parse_fault_flag", "parse_faults"]

#: The faults, each with what it does; the chance it counts is in brackets.
FAULTS: Mapping[str, str] = {
    "lambda.kill": "SIGKILL the environment `ms` into an invocation [invocations]",
    "lambda.throttle": "refuse the invocation as Lambda does at its concurrency limit: "
    "429 TooManyRequestsException on the Invoke API, API Gateway's 'Internal server error' "
    "frame on a route, async retries with backoff [invocations]",
    "store.fail": "the session store raises StoreUnavailableError for the whole invocation "
    "[invocations]",
    "store.stall": "every store operation of the invocation waits `ms` first [invocations]",
    "connections.drop": "an @connections POST is read, not delivered, and its TCP connection "
    "reset without an answer [posts]",
    "connections.delay": "an @connections POST is delivered and answered `ms` late [posts]",
    "connections.throttle": "an @connections POST is answered 429 LimitExceededException, "
    "not delivered [posts]",
    "connections.error": "an @connections POST is answered 500 InternalServerErrorException, "
    "not delivered [posts]",
    "async.duplicate": "an async event (Event invoke, SNS, SQS message) is delivered twice "
    "[deliveries]",
    "async.delay": "an async event waits `ms` before delivery, so later ones overtake it "
    "[deliveries]",
    "client.abort": "right after a POST is delivered, the client's TCP connection is reset "
    "(no close frame: $disconnect sees 1006) [posts]",
}
_FIELDS = frozenset(allowed("faults.<fault>"))
_NAME_RE = re.compile(r"^[a-z]+\.[a-z]+$")


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a fault fires and its one parameter.

    Attributes:
        rate: probability per chance once past ``after`` (0..1).
        after: chances spared first (e.g. ``after = 2`` on posts: the third post is the
            first that can fail).
        count: most injections in all (None: no limit).
        ms: the delay, stall or kill time of the faults that have one.
        functions: Lambda and store faults only hit these functions (empty: all).
    """

    rate: float = 1.0
    after: int = 0
    count: int | None = None
    ms: float = 0.0
    functions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON/TOML form (what ``GET /_warmline/faults`` shows)."""
        out: dict[str, Any] = {"rate": self.rate, "after": self.after, "ms": self.ms}
        if self.count is not None:
            out["count"] = self.count
        if self.functions:
            out["functions"] = list(self.functions)
        return out


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """The faults switched on, by name, and the PRNG seed."""

    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``[faults]`` table this plan came from (flat names)."""
        out: dict[str, Any] = {name: t.to_dict() for name, t in self.triggers.items()}
        if self.seed is not None:
            out["seed"] = self.seed
        return out


def parse_faults(table: Mapping[str, Any], functions: Sequence[str] = ()) -> FaultPlan:
    """Read a ``[faults]`` table (nested ``connections.drop`` or flat ``"connections.drop"``).

    Args:
        table: the table (also the JSON body of ``PUT /_warmline/faults``).
        functions: the configured function names, to check ``functions`` lists.

    Raises:
        ConfigurationError: an unknown fault or field, or a bad value (names it).
    """
    if not isinstance(table, Mapping):
        raise ConfigurationError("faults must be a table")
    seed = table.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ConfigurationError("faults.seed must be an integer")
    triggers: dict[str, Trigger] = {}
    for key, value in table.items():
        if key == "seed":
            continue
        if "." in key:
            triggers[key] = _trigger(key, value, functions)
            continue
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"unknown fault {'faults.' + key!r}; known: {_known()}")
        for sub, spec in value.items():
            name = f"{key}.{sub}"
            triggers[name] = _trigger(name, spec, functions)
    return FaultPlan(triggers, seed)


def parse_fault_flag(flag: str, functions: Sequence[str] = ()) -> tuple[str, Trigger]:
    """One ``--fault`` value: ``NAME``, ``NAME=RATE`` or ``NAME=key=value,key=value``.

    ``--fault client.abort`` fires at every chance; ``--fault connections.drop=0.05`` at 5%;
    ``--fault lambda.kill=ms=150,count=1,functions=worker`` (functions split on ``+``).

    Raises:
        ConfigurationError: naming the bad part.
    """
    name, _, spec = flag.partition("=")
    name = name.strip()
    if not spec:
        return name, _trigger(name, {}, functions)
    try:
        rate = float(spec)
    except ValueError:
        pass
    else:  # (outside the try: ConfigurationError is a ValueError too)
        return name, _trigger(name, rate, functions)
    table: dict[str, Any] = {}
    for part in spec.split(","):
        key, eq, raw = part.partition("=")
        key = key.strip()
        if not eq:
            raise ConfigurationError(f"--fault {flag}: expected key=value, got {part!r}")
        if key == "functions":
            table[key] = [f for f in raw.split("+") if f]
            continue
        try:
            table[key] = json.loads(raw)
        except ValueError as exc:
            raise ConfigurationError(f"--fault {flag}: {key} is not a number") from exc
    return name, _trigger(name, table, functions)


def _known() -> str:
    return ", ".join(FAULTS)


def _trigger(name: str, spec: Any, functions: Sequence[str]) -> Trigger:
    where = f"faults.{name}"
    if not _NAME_RE.match(name) or name not in FAULTS:
        raise ConfigurationError(f"unknown fault {where!r}; known: {_known()}")
    if isinstance(spec, bool):
        spec = 1.0 if spec else 0.0
    if isinstance(spec, int | float):
        spec = {"rate": spec}
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where} must be a rate (0..1) or a table")
    unknown = set(spec) - _FIELDS
    if unknown:
        raise ConfigurationError(f"unknown key {where}.{sorted(unknown)[0]!r}")
    rate = _number(spec, "rate", where, 1.0)
    if not 0.0 <= rate <= 1.0:
        raise ConfigurationError(f"{where}.rate must be in 0..1, got {rate}")
    after = _whole(spec, "after", where, 0)
    count = _whole(spec, "count", where, None) if "count" in spec else None
    ms = _number(spec, "ms", where, 0.0)
    if ms < 0:
        raise ConfigurationError(f"{where}.ms must be >= 0")
    if name in ("connections.delay", "store.stall", "async.delay") and ms == 0:
        raise ConfigurationError(f"{where} needs ms > 0")
    raw_functions = spec.get("functions", [])
    if isinstance(raw_functions, str):
        raw_functions = [raw_functions]
    if not isinstance(raw_functions, list) or not all(isinstance(f, str) for f in raw_functions):
        raise ConfigurationError(f"{where}.functions must be a list of function names")
    if raw_functions and not name.startswith(("lambda.", "store.", "async.")):
        raise ConfigurationError(f"{where}.functions applies to lambda.*, store.* and async.*")
    for function in raw_functions:
        if functions and function not in functions:
            raise ConfigurationError(f"{where}.functions: unknown function {function!r}")
    return Trigger(rate, after, count, ms, tuple(raw_functions))


def _number(spec: Mapping[str, Any], key: str, where: str, default: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise ConfigurationError(f"{where}.{key} must be a number")
    return float(value)


def _whole(spec: Mapping[str, Any], key: str, where: str, default: int | None) -> int:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{where}.{key} must be a whole number >= 0")
    return value
