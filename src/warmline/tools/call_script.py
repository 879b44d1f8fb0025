"""The script of a ``warmline call``: what the caller does, one step a line.

::

    Hello, what are your opening hours?      a final prompt (say: ... also works)
    dtmf: 1                                    a key press (several digits: one step each)
    interrupt after 2                          barge in after 2 text frames of the answer
    wait: 0.5                                  pause
    hangup                                     the caller hangs up
    # a comment
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

from warmline.errors import ConfigurationError

__all__ = ["Script", "Step", "parse_script", "typed_steps"]


@dataclass(frozen=True)
class Step:
    """One scripted action: ``say``, ``dtmf``, ``interrupt``, ``wait`` or ``hangup``."""

    kind: str
    value: str = ""
    after: int = 1


def parse_script(lines: Iterable[str]) -> list[Step]:
    """Script lines -> steps (see the module docstring).

    Raises:
        ConfigurationError: a line that names an action with a bad value.
    """
    steps: list[Step] = []
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, sep, rest = line.partition(":")
        key = head.strip().lower()
        if sep and key == "dtmf":
            digits = rest.strip()
            if not digits or any(d not in "0123456789*#" for d in digits):
                raise ConfigurationError(f"line {number}: dtmf takes digits 0-9 * #")
            steps.extend(Step("dtmf", d) for d in digits)
        elif sep and key == "wait":
            try:
                steps.append(Step("wait", str(float(rest))))
            except ValueError as exc:
                raise ConfigurationError(f"line {number}: wait takes seconds") from exc
        elif sep and key == "say":
            steps.append(Step("say", rest.strip()))
        elif line.lower().startswith("interrupt"):
            words = line.split()
            after = int(words[2]) if len(words) == 3 and words[1] == "after" else 1
            steps.append(Step("interrupt", after=max(1, after)))
        elif line.lower() == "hangup":
            steps.append(Step("hangup"))
        else:
            steps.append(Step("say", line))
    return steps


async def typed_steps(prompt: str = "caller> ") -> AsyncIterator[Step]:
    """Steps typed at the terminal, read without blocking the event loop; EOF ends."""
    while True:
        try:
            line = await asyncio.to_thread(input, prompt)
        except EOFError:
            return
        for step in parse_script([line]):
            yield step


class Script:
    """The caller's steps, consumed across the sessions of one call (a call connected
    again by its ``action`` goes on where the previous session stopped)."""

    def __init__(self, steps: list[Step] | AsyncIterator[Step]) -> None:
        self._list = steps if isinstance(steps, list) else None
        self._iter = None if isinstance(steps, list) else steps
        self._index = 0
        self.exhausted = False

    async def next(self) -> Step | None:
        """The next step, or None when the script is over."""
        if self._list is not None:
            if self._index >= len(self._list):
                self.exhausted = True
                return None
            self._index += 1
            return self._list[self._index - 1]
        assert self._iter is not None
        try:
            return await anext(self._iter)
        except StopAsyncIteration:
            self.exhausted = True
            return None

    def peek(self) -> Step | None:
        """The step after the current one when known in advance (scripts, not typing)."""
        if self._list is not None and self._index < len(self._list):
            return self._list[self._index]
        return None

    @property
    def left(self) -> bool:
        """Whether steps may remain."""
        return not self.exhausted and (self._list is None or self._index < len(self._list))
