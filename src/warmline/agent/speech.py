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
from collections.abc import Iterator

__all__ = [
    "DEFAULT_MAX_CHUNK_CHARS",
    "DEFAULT_MIN_CHUNK_CHARS",
    "MAX_SENTENCE_WORDS",
    "SpeechShaper",
    "for_speech",
    "money",
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

_FENCE = re.compile(r"^\s*(```|~~~).*$", re.M)
_INLINE_CODE = re.compile(r"`([^`]*)`")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", re.M)
_BULLET = re.compile(r"^\s*(?:[-*+\u2022]|\d{1,3}[.)])\s+(.*)$", re.M)
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
    """Shapes a token stream (an LLM's output) for speech, one sentence at a time.

    Tokens are buffered until a sentence or line ends; the finished text goes through
    :func:`for_speech` and comes out as :func:`speech_chunks`. Markdown that spans
    tokens (``**`` in one token, the word in the next) is therefore seen whole.

    Usage::

        shaper = SpeechShaper()
        for token in llm_tokens:
            yield from shaper.feed(token)
        yield from shaper.flush()
    """

    __slots__ = ("_buffer", "_started", "min_chars", "max_chars")

    def __init__(
        self,
        *,
        min_chars: int = DEFAULT_MIN_CHUNK_CHARS,
        max_chars: int = DEFAULT_MAX_CHUNK_CHARS,
    ) -> None:
        self._buffer = ""
        self._started = False
        self.min_chars = min_chars
        self.max_chars = max_chars

    def feed(self, token: str) -> list[str]:
        """Add a token; return the chunks now ready to send (often none)."""
        self._buffer += token
        ready = _last_sentence_end(self._buffer)
        if ready <= 0:
            if len(self._buffer) <= 4 * self.max_chars:
                return []
            ready = self._buffer.rfind(" ") + 1 or len(self._buffer)
        done, self._buffer = self._buffer[:ready], self._buffer[ready:]
        return self._shape(done)

    def flush(self) -> list[str]:
        """The chunks for whatever is still buffered (call once, at the end)."""
        done, self._buffer = self._buffer, ""
        return self._shape(done)

    def _shape(self, text: str) -> list[str]:
        spoken = for_speech(text)
        if text.rstrip(" \t").endswith("\n"):
            spoken = _end_sentence(spoken)  # a finished line is a sentence
        if not spoken:
            return []
        if self._started:
            spoken = " " + spoken
        self._started = True
        return speech_chunks(spoken, min_chars=self.min_chars, max_chars=self.max_chars)


_READY = re.compile(r"(?<![\d\s])[.!?][\"')\]]*[ \t]+(?=\S)|\n")


def _last_sentence_end(text: str) -> int:
    """Index just after the last sentence end or line break (0: none yet).

    A period after a digit (``1.`` of a numbered list, ``$12.``) is not an end: the
    list item or the number may continue in the next token.
    """
    best = 0
    for match in _READY.finditer(text):
        best = match.end()
    return best
