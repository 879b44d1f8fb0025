"""Text shaped for a voice: no markdown, symbols and URLs spoken, short sentences, chunks.

Everything the agent says goes to a text-to-speech engine through ConversationRelay
``text`` frames (docs/protocols.md §1.3). TTS reads what it gets: ``**Note:**`` becomes
"asterisk asterisk note", ``$12.50`` may become "dollar twelve point five zero", and a URL
is spelled out letter by letter. LLMs write markdown by habit, so their output goes
through :func:`for_speech` (a whole text) or :class:`SpeechShaper` (a token stream), and
then :func:`speech_chunks` cuts it at natural pauses so the first words can be spoken
while the rest is still being produced.

Chunks keep their spaces: ConversationRelay concatenates ``token`` values as they are
("don't trim LLM tokens", §1.3), so ``"".join(speech_chunks(t)) == t`` always holds.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator

__all__ = [
    "ABBREVIATIONS",
    "DEFAULT_HOLD_S",
    "DEFAULT_MAX_CHUNK_CHARS",
    "DEFAULT_MIN_CHUNK_CHARS",
    "MAX_SENTENCE_WORDS",
    "SpeechShaper",
    "for_speech",
    "money",
    "shape_stream",
    "speak_url",
    "speech_chunks",
]

#: Sentences longer than this are split at a comma before a conjunction: long sentences
#: are hard to follow by ear, and TTS engines flatten their intonation.
MAX_SENTENCE_WORDS = 30
#: A chunk shorter than this is merged with the next one (fewer frames, same pauses).
DEFAULT_MIN_CHUNK_CHARS = 16
#: A chunk longer than this is cut at a space (one clause should not hold up the stream).
DEFAULT_MAX_CHUNK_CHARS = 200
#: The longest a complete word waits for its sentence to end before it is spoken anyway
#: (at a clause boundary if there is one). With a TTS that starts speaking within a few
#: hundred milliseconds, the caller never waits about a second for words the model has
#: already written.
DEFAULT_HOLD_S = 0.6
#: Words whose period does not end a sentence (lower case, with their periods).
ABBREVIATIONS = frozenset(
    "dr. mr. mrs. ms. prof. sr. jr. st. mt. vs. etc. e.g. i.e. approx. no. fig. inc. ltd. "
    "co. corp. dept. est. min. max. ext. tel. jan. feb. mar. apr. jun. jul. aug. sep. "
    "sept. oct. nov. dec. mon. tue. wed. thu. fri. sat. sun.".split()
)

_FENCE = re.compile(r"^\s*(```|~~~).*$", re.M)
_INLINE_CODE = re.compile(r"`([^`]*)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)[ \t]*#*[ \t]*$", re.M)
_BULLET = re.compile(r"^[ \t]*(?:[-*+\u2022]|\d{1,3}[.)])[ \t]+(.*)$", re.M)
_QUOTE = re.compile(r"^\s*>\s?", re.M)
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$", re.M)
_TABLE_SEP = re.compile(r"^\s*\|?\s*:?-{3,}.*$", re.M)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC = re.compile(r"(?<![\w*])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_STRIKE = re.compile(r"~~(.+?)~~")

_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})\b")
_URL = re.compile(
    r"\b(?:https?://)?(?:www\.)?"
    r"((?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,})\b"
    r"((?:/[A-Za-z0-9._~%!$&'()*+,;=:@?#-]*)*)",
)
_MONEY = re.compile(r"\$\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?!\d)")
_PER = re.compile(r"\s*/\s*(mo|month|yr|year|day|hr|hour)\b", re.I)
_PERCENT = re.compile(r"(\d)\s*%")
_ALWAYS = re.compile(r"\b24\s*/\s*7\b")
_ABBREVIATIONS = (
    (re.compile(r"\be\.g\.,?", re.I), "for example,"),
    (re.compile(r"\bi\.e\.,?", re.I), "that is,"),
    (re.compile(r"\betc\.", re.I), "and so on."),
    (re.compile(r"\bvs\.?(?=\s)", re.I), "versus"),
)
_DASH = re.compile(r"\s*(?:\u2014|\u2013|--)\s*")
_SPACES = re.compile(r"[ \t]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SEMICOLON = re.compile(r"\s*;\s*(\w?)")
_SPLIT_AT = re.compile(r",\s+(?=(?:and|but|so)\s)")
_BOUNDARY = re.compile(r"[.!?;:,]+[\"')\]]*(?:\s+|$)|\n+")

_PER_WORD = {"mo": "month", "yr": "year", "hr": "hour"}


def money(match: re.Match[str]) -> str:
    """``$12.50`` -> "12 dollars and 50 cents"; ``$1`` -> "1 dollar"; ``$0.05`` -> "5 cents"."""
    dollars = int(match.group(1).replace(",", ""))
    cents_text = match.group(2)
    cents = int(cents_text.ljust(2, "0")) if cents_text else 0
    parts = []
    if dollars or not cents:
        parts.append(f"{dollars} dollar" + ("" if dollars == 1 else "s"))
    if cents:
        parts.append(f"{cents} cent" + ("" if cents == 1 else "s"))
    return " and ".join(parts)


def speak_url(host: str, path: str = "") -> str:
    """``brightwave.example`` + ``/help`` -> "brightwave dot example slash help"."""
    spoken = host.lower().replace(".", " dot ").replace("-", " dash ")
    path = path.rstrip(".,;:!?)")
    for sep, word in (("/", " slash "), (".", " dot "), ("-", " dash "), ("_", " underscore ")):
        path = path.replace(sep, word)
    return _SPACES.sub(" ", (spoken + path).strip())


def _url(match: re.Match[str]) -> str:
    path = match.group(2) or ""
    trailing = path[len(path.rstrip(".,;:!?)")) :]
    return speak_url(match.group(1), path) + trailing


def _email(match: re.Match[str]) -> str:
    user = match.group(1).replace(".", " dot ").replace("_", " underscore ")
    return f"{user} at {speak_url(match.group(2))}"


def _per(match: re.Match[str]) -> str:
    unit = match.group(1).lower()
    return " a " + _PER_WORD.get(unit, unit)


def _strip_markdown(text: str) -> str:
    text = _FENCE.sub("", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _TABLE_SEP.sub("", text)
    text = _HEADING.sub(lambda m: _end_sentence(m.group(1)), text)
    text = _BULLET.sub(lambda m: _end_sentence(m.group(1)), text)
    text = _QUOTE.sub("", text)
    text = text.replace("|", " ")
    for _ in range(2):  # bold inside italic and the reverse
        text = _BOLD.sub(r"\2", text)
        text = _ITALIC.sub(r"\2", text)
    return _STRIKE.sub(r"\1", text)


def _end_sentence(text: str) -> str:
    text = text.strip()
    return text if not text or text[-1] in ".!?:;," else text + "."


def _symbols(text: str) -> str:
    text = _ALWAYS.sub("24 hours a day, 7 days a week", text)
    for pattern, words in _ABBREVIATIONS:
        text = pattern.sub(words, text)
    text = _EMAIL.sub(_email, text)
    text = _URL.sub(_url, text)
    text = _MONEY.sub(money, text)
    text = _PER.sub(_per, text)
    text = _PERCENT.sub(r"\1 percent", text)
    text = text.replace("%", " percent").replace("&", " and ").replace("@", " at ")
    return _DASH.sub(", ", text)


def _short_sentences(text: str) -> str:
    text = _SEMICOLON.sub(lambda m: ". " + m.group(1).upper(), text)
    sentences = []
    for sentence in _SENTENCE_END.split(text):
        while len(sentence.split()) > MAX_SENTENCE_WORDS:
            cut = _best_cut(sentence)
            if cut is None:
                break
            head, tail = sentence[: cut.start()], sentence[cut.end() :]
            sentences.append(head + ".")
            sentence = tail[:1].upper() + tail[1:]
        sentences.append(sentence)
    return " ".join(sentences)


def _best_cut(sentence: str) -> re.Match[str] | None:
    """The ", and" / ", but" / ", so" nearest the middle that leaves 5+ words each side."""
    total = len(sentence.split())
    best: re.Match[str] | None = None
    best_distance = float(total)
    for match in _SPLIT_AT.finditer(sentence):
        before = len(sentence[: match.start()].split())
        if before < 5 or total - before < 6:  # the tail includes the conjunction
            continue
        distance = abs(before - total / 2)
        if distance < best_distance:
            best, best_distance = match, distance
    return best


def for_speech(text: str) -> str:
    """``text`` rewritten to be read aloud.

    Markdown is removed (headings and list items become sentences, links become their
    text), symbols are spelled (``&`` "and", ``%`` "percent", ``$12.50`` "12 dollars and
    50 cents", ``24/7``), URLs and emails are read as "brightwave dot example slash help",
    semicolons end sentences and very long sentences are split. Text that is already
    speakable comes back unchanged.
    """
    text = _strip_markdown(text.replace("\r\n", "\n"))
    text = _symbols(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    paragraphs = [line for line in lines if line]
    # A line break is a pause: a line without an end mark becomes its own sentence.
    joined = " ".join(
        line if n == len(paragraphs) - 1 else _end_sentence(line)
        for n, line in enumerate(paragraphs)
    )
    return _SPACES.sub(" ", _short_sentences(joined)).strip()


def speech_chunks(
    text: str,
    *,
    min_chars: int = DEFAULT_MIN_CHUNK_CHARS,
    max_chars: int = DEFAULT_MAX_CHUNK_CHARS,
) -> list[str]:
    """Cut ``text`` into ``text``-frame tokens at natural pauses, keeping every character.

    Boundaries are sentence and clause ends (``. ! ? ; : ,``) and line breaks, each cut
    after the whitespace that follows, so ``"".join(chunks) == text``. Chunks shorter than
    ``min_chars`` are merged with the next; chunks longer than ``max_chars`` are cut
    after a space.
    """
    pieces: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(text):
        if text[match.start()] == "." and not _is_sentence_end(text, match):
            continue
        if match.end() > start:
            pieces.append(text[start : match.end()])
            start = match.end()
    if start < len(text):
        pieces.append(text[start:])
    chunks: list[str] = []
    pending = ""
    for piece in pieces:
        parts = list(_cut_long(pending + piece, max_chars))
        pending = parts.pop()  # every part but the last is already max_chars long
        chunks.extend(parts)
        if len(pending) >= min_chars:
            chunks.append(pending)
            pending = ""
    if pending:
        if chunks and len(chunks[-1]) + len(pending) <= max_chars:
            chunks[-1] += pending
        else:
            chunks.append(pending)
    return chunks


def _cut_long(text: str, max_chars: int) -> Iterator[str]:
    while len(text) > max_chars:
        cut = text.rfind(" ", 0, max_chars) + 1
        if cut <= 0:
            cut = max_chars
        yield text[:cut]
        text = text[cut:]
    if text:
        yield text


class SpeechShaper:
    """Shapes a token stream (an LLM's output) for speech, never holding words for long.

    Tokens are buffered until a sentence or line ends; the finished text goes through
    :func:`for_speech` and comes out as :func:`speech_chunks`. Markdown that spans
    tokens (``**`` in one token, the word in the next) is therefore seen whole. A
    sentence ends at ``. ! ?`` followed by a space, also after a number ("It costs 5. ")
    but not after a list marker at the start of a line (``1. ``) or an abbreviation
    (``Dr.``, ``e.g.``; :data:`ABBREVIATIONS`).

    A slow model must not leave the caller in silence while a sentence is still being
    written: text that has waited ``hold_s`` is released at the last clause boundary
    (``, ; : —``), else at the last word boundary, and so is a buffer longer than
    ``max_chars``. Time is passed in (``now``, seconds on any monotonic clock), so the
    rule is testable without waiting; a consumer that waits for tokens calls
    :meth:`poll` at :meth:`deadline` (:func:`shape_stream` does).

    Usage::

        shaper = SpeechShaper()
        for token in llm_tokens:
            yield from shaper.feed(token, now=time.monotonic())
        yield from shaper.flush()
    """

    __slots__ = (
        "_buffer",
        "_line_start",
        "_marks",
        "_item",
        "_open",
        "_started",
        "hold_s",
        "max_chars",
        "min_chars",
    )

    def __init__(
        self,
        *,
        min_chars: int = DEFAULT_MIN_CHUNK_CHARS,
        max_chars: int = DEFAULT_MAX_CHUNK_CHARS,
        hold_s: float = DEFAULT_HOLD_S,
    ) -> None:
        self._buffer = ""
        #: (buffer offset where a token ends, when it arrived), oldest first.
        self._marks: list[tuple[int, float]] = []
        self._started = False
        #: whether the buffer begins a line (the stream's start, or after a line break).
        self._line_start = True
        #: markdown markers a cut left open; their pair is dropped when it arrives.
        self._open: list[str] = []
        #: whether the current line is a list item or heading (ended as a sentence).
        self._item = False
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.hold_s = hold_s

    def feed(self, token: str, now: float | None = None) -> list[str]:
        """Add a token that arrived at ``now``; return the chunks now ready (often none).

        Without ``now`` only sentence ends and ``max_chars`` release text.
        """
        if token:
            self._buffer += token
            self._marks.append((len(self._buffer), now if now is not None else 0.0))
        return self._release(now)

    def poll(self, now: float) -> list[str]:
        """The chunks whose hold ran out by ``now`` (call it at :meth:`deadline`)."""
        return self._release(now)

    def deadline(self) -> float | None:
        """When held text must be released, or None when there is none to release.

        A buffer holding only part of a word has nothing to release: the word may go on.
        """
        first = _WORD_END.search(self._buffer)
        if first is None:
            return None
        arrived = next(t for end, t in self._marks if end > first.start())
        return arrived + self.hold_s

    def flush(self) -> list[str]:
        """The chunks for whatever is still buffered (call once, at the end)."""
        done, self._buffer = self._close_markup(self._buffer), ""
        self._marks.clear()
        starts_line, self._line_start = self._line_start, True
        return self._shape(done, starts_line, last=True)

    def _release(self, now: float | None) -> list[str]:
        buffer = self._buffer
        ready = _last_sentence_end(buffer, self._line_start)
        if ready <= 0 and len(buffer) > self.max_chars:
            ready = _last_clause_end(buffer) or _last_word_end(buffer) or len(buffer)
        if ready <= 0 and now is not None:
            ready = self._overdue_cut(now)
        if ready <= 0:
            return []
        done, self._buffer = self._close_markup(buffer[:ready]), buffer[ready:]
        self._marks = [(end - ready, t) for end, t in self._marks if end > ready]
        starts_line, self._line_start = self._line_start, done.rstrip(" \t").endswith("\n")
        return self._shape(done, starts_line)

    def _close_markup(self, done: str) -> str:
        """``done`` without the markdown markers a cut left unpaired.

        A marker left open (``**`` before the cut, its pair after it) is dropped here and
        its pair when it comes, so neither is read aloud.
        """
        for marker in list(self._open):
            at = done.find(marker)
            if at >= 0:
                done = done[:at] + done[at + len(marker) :]
                self._open.remove(marker)
        for marker in _MARKERS:
            bare = done.replace("**", "").replace("~~", "") if marker == "`" else done
            if bare.count(marker) % 2:
                at = done.rfind(marker)
                done = done[:at] + done[at + len(marker) :]
                self._open.append(marker)
        return done

    def _overdue_cut(self, now: float) -> int:
        """Where to cut so that no word complete for ``hold_s`` stays held (0: nowhere).

        Every word followed by a space that arrived ``hold_s`` ago or earlier goes; the
        cut moves on to the last clause boundary when there is one past that point.
        """
        overdue = 0
        for end, t in self._marks:
            if t + self.hold_s > now:
                break
            overdue = end
        required = 0
        for match in _WORD_END.finditer(self._buffer):
            if match.start() >= overdue:
                break
            required = match.end()
        if required <= 0:
            return 0
        return max(required, _last_clause_end(self._buffer))

    def _shape(self, text: str, starts_line: bool, last: bool = False) -> list[str]:
        line = text.rfind("\n")
        if line >= 0 or starts_line:  # the line this text ends on began in it
            self._item = bool(_ITEM_START.match(text[line + 1 :]))
        if starts_line:
            spoken = for_speech(text)
        else:  # the middle of a line: "5. " here is a number, not a list item
            spoken = for_speech(_MID_LINE + text).replace(_MID_LINE, "").lstrip()
        if text.rstrip(" \t").endswith("\n") or (last and self._item):
            spoken = _end_sentence(spoken)  # a finished line or list item is a sentence
        if not spoken:
            return []
        if self._started:
            spoken = " " + spoken
        self._started = True
        return speech_chunks(spoken, min_chars=self.min_chars, max_chars=self.max_chars)


async def shape_stream(
    tokens: AsyncIterable[object],
    *,
    hold_s: float = DEFAULT_HOLD_S,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[object]:
    """An async token stream as speech chunks, releasing held text while the model stalls.

    Waiting for the next token is bounded by the shaper's :meth:`~SpeechShaper.deadline`,
    so a model that pauses mid-sentence does not hold the words it already produced. An
    item that is not text (a tool call) passes through after the text before it; when the
    stream fails, the text before the failure is spoken, then the error is raised.

    Args:
        tokens: the model's raw tokens (and tool calls).
        hold_s: the longest a complete word waits for its sentence to end.
        clock: monotonic seconds (default ``time.monotonic``).
    """
    import asyncio
    import time

    now = clock or time.monotonic
    shaper = SpeechShaper(hold_s=hold_s)
    source = aiter(tokens)
    pending: asyncio.Future[object] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            due = shaper.deadline()
            timeout = None if due is None else max(0.0, due - now())
            done, _ = await asyncio.wait({pending}, timeout=timeout)
            if not done:
                for chunk in shaper.poll(now()):
                    yield chunk
                continue
            try:
                token = pending.result()
            except StopAsyncIteration:
                break
            except Exception:
                for chunk in shaper.flush():  # what the model said before it failed is said
                    yield chunk
                raise
            finally:
                pending = None
            if not isinstance(token, str):  # a tool call, after the text before it
                for chunk in shaper.flush():
                    yield chunk
                yield token
                continue
            for chunk in shaper.feed(token, now()):
                yield chunk
        for chunk in shaper.flush():
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()


_READY = re.compile(r"(?<!\s)[.!?][\"')\]]*[ \t]+(?=\S)|\n")
_CLAUSE = re.compile(r"(?<!\s)(?:[,;:]|\u2014|\u2013|--)[\"')\]]*\s+")
_WORD_END = re.compile(r"\s+")
#: A number that opens a line is a list marker (``1. Unplug``), not a sentence's end.
_LIST_MARKER = re.compile(r"(?:^|\n)[ \t]*\d{1,3}$")
_WORD_TAIL = re.compile(r"[A-Za-z.]*$")
#: Put before text that continues a line, so line-start markdown rules do not apply to it
#: (a private-use character: no rule matches it, and it is not a word character).
_MID_LINE = "\ue000"
#: A line that for_speech ends as a sentence even without an end mark.
_ITEM_START = re.compile(r"^[ \t]*(?:[-*+\u2022]|\d{1,3}[.)]|#{1,6})[ \t]+\S")
#: Paired markdown markers a cut may split.
_MARKERS = ("**", "__", "~~", "`")


def _is_sentence_end(text: str, match: re.Match[str], line_start: bool = True) -> bool:
    """Whether the ``. ! ?`` that ``match`` starts with ends a sentence in ``text``.

    ``line_start``: whether ``text`` begins at the start of a line.
    """
    if text[match.start()] != ".":
        return True
    before = text[: match.start()]
    if before[-1:].isdigit():
        return not _LIST_MARKER.search(before if line_start else "\0" + before)
    tail = _WORD_TAIL.search(before)
    word = (tail.group() if tail else "").lower() + "."
    return word not in ABBREVIATIONS


def _last_sentence_end(text: str, line_start: bool = True) -> int:
    """Index just after the last sentence end or line break (0: none yet).

    A period needs the space after it before it counts (``5.`` may become ``5.50``), and
    is no end after a list marker at the start of a line or an abbreviation.
    ``line_start``: whether ``text`` begins at the start of a line.
    """
    best = 0
    for match in _READY.finditer(text):
        if match.group() == "\n" or _is_sentence_end(text, match, line_start):
            best = match.end()
    return best


def _last_clause_end(text: str) -> int:
    """Index just after the last clause boundary with no markdown left open (0: none)."""
    best = 0
    for match in _CLAUSE.finditer(text):
        if _closed(text[: match.end()]):
            best = match.end()
    return best


def _last_word_end(text: str) -> int:
    """Index just after the last space before a word, preferring closed markdown (0: none)."""
    ends = [match.end() for match in _WORD_END.finditer(text)]
    closed = [end for end in ends if _closed(text[:end])]
    return (closed or ends or [0])[-1]


def _closed(text: str) -> bool:
    """Whether ``text`` leaves no bold, code, strike-through or link open."""
    if any(text.count(marker) % 2 for marker in _MARKERS):
        return False
    return text.count("[") <= text.count("]") and text.count("](") <= text.count(")")
