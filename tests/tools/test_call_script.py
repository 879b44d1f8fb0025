"""warmline call's script language."""

from __future__ import annotations

import pytest

from warmline.errors import ConfigurationError
from warmline.tools.call import Step, parse_script


def test_script_lines_become_steps() -> None:
    steps = parse_script(
        [
            "# a comment",
            "",
            "What are your opening hours?",
            "say: dtmf: is just text here",
            "dtmf: 1#",
            "interrupt after 3",
            "interrupt",
            "wait: 0.25",
            "hangup",
        ]
    )
    assert steps == [
        Step("say", "What are your opening hours?"),
        Step("say", "dtmf: is just text here"),
        Step("dtmf", "1"),
        Step("dtmf", "#"),
        Step("interrupt", after=3),
        Step("interrupt", after=1),
        Step("wait", "0.25"),
        Step("hangup"),
    ]


@pytest.mark.parametrize("line", ["dtmf: x", "dtmf:", "wait: soon"])
def test_bad_lines_name_the_line(line: str) -> None:
    with pytest.raises(ConfigurationError, match="line 2"):
        parse_script(["hello", line])
