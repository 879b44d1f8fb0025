"""What a translated template runs, and what it does not: notes, the result, the error.

A team bringing an existing SAM, Serverless or Terraform stack needs to know, before the
first call, which parts of it the emulator runs and which it does not. The worst outcome is
a DynamoDB table or a Node.js function that silently vanishes and a call that fails an
hour later for a reason nobody can see; so every resource a translator does not run becomes
a :class:`Note` saying what happens instead, and the notes are printed at start-up.

A template the translator cannot read raises :class:`SourceError`, whose message names the
file, the resource and the property, like ``template.yaml: Resources.ChatApi.Properties.
RouteSelectionExpression: ...``; it subclasses :class:`~warmline.errors.ConfigurationError`
so ``warmline dev`` reports it the way it reports a bad ``warmline.toml`` (exit 2, no
traceback).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from warmline.config import DevConfig
from warmline.errors import ConfigurationError

__all__ = ["Note", "NoteKind", "SourceError", "Translation", "format_report", "guard"]

#: ``unsupported``: something the stack relies on that the emulator does not run;
#: ``ignored``: something only the cloud needs (IAM, permissions, deployments);
#: ``info``: a translation choice worth knowing (a Python version, a skipped condition).
NoteKind = Literal["unsupported", "ignored", "info"]


class SourceError(ConfigurationError):
    """A SAM/CloudFormation, serverless.yml or Terraform source cannot be translated.

    Args:
        message: what is wrong, naming the resource and property (the ``where``).
        where: a dotted path such as ``Resources.ChatApi.Properties.ProtocolType``.
        source: the file (or directory) being read.
    """

    def __init__(self, message: str, *, where: str = "", source: Path | None = None) -> None:
        self.where = where
        self.source = source
        self.detail = message
        prefix = f"{source}: " if source is not None else ""
        located = f"{where}: {message}" if where else message
        super().__init__(prefix + located)


@contextmanager
def guard(where: str, source: Path) -> Iterator[None]:
    """Turn a surprise while reading one resource into a :class:`SourceError` naming it.

    Translators check the shapes they expect and raise precise errors; this is the net
    under them, so a value of a shape nobody anticipated (a string where a mapping was
    expected, say) still gives a message naming the resource, never a traceback.
    """
    try:
        yield
    except SourceError:
        raise
    except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:
        raise SourceError(
            f"a value has an unexpected shape ({type(exc).__name__}: {exc})",
            where=where,
            source=source,
        ) from exc


@dataclass(frozen=True, slots=True)
class Note:
    """One resource (or property) the emulator does not run as written.

    Attributes:
        resource: the logical id, ``functions.NAME`` or Terraform address.
        kind: see :data:`NoteKind`.
        type: the resource type (``AWS::DynamoDB::Table``, ``aws_dynamodb_table``...).
        message: what the emulator does instead.
    """

    resource: str
    kind: NoteKind
    type: str
    message: str

    def line(self) -> str:
        """The start-up line for this note."""
        label = {"unsupported": "not run", "ignored": "ignored", "info": "note"}[self.kind]
        kind = f" ({self.type})" if self.type else ""
        return f"{label}: {self.resource}{kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class Translation:
    """A translated stack: the config the emulator runs plus the notes about the rest.

    Attributes:
        config: what :class:`~warmline.dev.server.DevServer` runs.
        notes: everything not run as written, in source order.
        source: the template file or Terraform directory.
        format: ``"sam"``, ``"cloudformation"``, ``"serverless"`` or ``"terraform"``.
    """

    config: DevConfig
    source: Path
    format: str
    notes: tuple[Note, ...] = field(default_factory=tuple)

    def unsupported(self) -> list[Note]:
        """The notes of things the stack uses that do not run locally."""
        return [n for n in self.notes if n.kind == "unsupported"]


def format_report(translation: Translation) -> str:
    """The start-up summary: what runs, then one line per note (unsupported first)."""
    config = translation.config
    head = (
        f"warmline dev: {translation.source} ({translation.format}): "
        f"{len(config.functions)} function(s), {len(config.websocket.routes)} route(s), "
        f"{len(config.schedules)} schedule(s)"
    )
    order = {"unsupported": 0, "info": 1, "ignored": 2}
    notes = sorted(translation.notes, key=lambda n: order[n.kind])
    services = config.services
    kinds: list[tuple[str, tuple[Any, ...]]] = [
        ("DynamoDB table", services.tables),
        ("SQS queue", services.queues),
        ("SNS topic", services.topics),
        ("S3 bucket", services.buckets),
        ("SSM parameter", services.parameters),
        ("Secrets Manager secret", services.secrets),
    ]
    local = [
        f"  local: {item.resource or item.name} ({kind} {item.name}): created in the local "
        "AWS services (moto)"
        for kind, items in kinds
        for item in items
    ]
    return "\n".join([head, *(f"  {note.line()}" for note in notes), *local])
