"""The ``warmline dev`` options that read an existing stack instead of ``warmline.toml``.

``cli/dev.py`` calls :func:`add_source_arguments` on its parser and
:func:`config_from_args` before falling back to ``warmline.toml``::

    warmline dev --template template.yaml --parameter-overrides "Stage=dev Table=calls"
    warmline dev --serverless serverless.yml --stage dev
    warmline dev --terraform infra/ -var stage=dev -var-file local.tfvars

The notes about what does not run locally are printed to stderr before the server
starts, so they are the first thing a developer sees.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from warmline.config import DevConfig
    from warmline.templates.report import Translation

__all__ = ["add_source_arguments", "config_from_args", "translation_from_args"]


def add_source_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--template``, ``--parameter-overrides``, ``--serverless``, ``--stage``,
    ``--region``, ``--terraform``, ``-var`` and ``-var-file`` to ``parser``."""
    group = parser.add_argument_group(
        "existing stacks", "run a SAM/CloudFormation, Serverless or Terraform stack unchanged"
    )
    sources = group.add_mutually_exclusive_group()
    sources.add_argument(
        "--template", type=Path, default=None, help="SAM or CloudFormation template (YAML/JSON)"
    )
    sources.add_argument(
        "--serverless", type=Path, default=None, help="serverless.yml (or its directory)"
    )
    sources.add_argument(
        "--terraform", type=Path, default=None, metavar="DIR", help="Terraform root module"
    )
    group.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="template parameters, as for `sam deploy` (with --template)",
    )
    group.add_argument("--stage", default=None, help="${opt:stage} (with --serverless)")
    group.add_argument(
        "--region", default=None, help="AWS::Region / ${opt:region} / the provider region"
    )
    group.add_argument(
        "-var",
        dest="tf_vars",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a Terraform variable (with --terraform; repeatable)",
    )
    group.add_argument(
        "-var-file",
        dest="tf_var_files",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a .tfvars file (with --terraform; repeatable)",
    )


def translation_from_args(args: argparse.Namespace) -> Translation | None:
    """The translated stack the options name, or None when none is named.

    Raises:
        SourceError: the stack cannot be translated, or options are misused.
    """
    from warmline.templates.report import SourceError

    template: Path | None = getattr(args, "template", None)
    serverless: Path | None = getattr(args, "serverless", None)
    terraform: Path | None = getattr(args, "terraform", None)
    overrides: list[str] = getattr(args, "parameter_overrides", None) or []
    tf_vars: list[str] = getattr(args, "tf_vars", None) or []
    tf_files: list[Path] = getattr(args, "tf_var_files", None) or []
    stage: str | None = getattr(args, "stage", None)
    region: str | None = getattr(args, "region", None)
    stack_name: str | None = getattr(args, "stack_name", None)
    named = [
        o
        for o, v in (
            ("--template", template),
            ("--serverless", serverless),
            ("--terraform", terraform),
        )
        if v is not None
    ]
    if named and getattr(args, "config", None) is not None:
        raise SourceError(f"--config and {named[0]} name two configs: give one")
    if overrides and template is None:
        raise SourceError("--parameter-overrides needs --template")
    if (tf_vars or tf_files) and terraform is None:
        raise SourceError("-var and -var-file need --terraform")
    if stage is not None and serverless is None:
        raise SourceError("--stage needs --serverless")
    if stack_name is not None and template is None:
        raise SourceError("--stack-name needs --template (it is AWS::StackName)")
    if template is not None or serverless is not None:
        try:
            import yaml  # noqa: F401 - PyYAML reads both formats
        except ModuleNotFoundError as exc:
            from warmline.errors import MissingExtraError

            raise MissingExtraError("yaml (PyYAML)", "dev") from exc
    if template is not None:
        from warmline.templates.cloudformation.read import translate_template

        return translate_template(
            template,
            parameter_overrides=overrides,
            region=region or "us-east-1",
            stack_name=stack_name,
        )
    if serverless is not None:
        from warmline.templates.serverless.read import translate_serverless

        options = {k: v for k, v in (("stage", stage), ("region", region)) if v is not None}
        return translate_serverless(serverless, options=options)
    if terraform is not None:
        from warmline.templates.terraform.read import translate_terraform

        variables: dict[str, str] = {}
        for item in tf_vars:
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise SourceError(f"-var {item!r} is not NAME=VALUE")
            variables[name] = value
        return translate_terraform(
            terraform, variables=variables, var_files=tf_files, region=region
        )
    return None


def config_from_args(args: argparse.Namespace, *, out: TextIO | None = None) -> DevConfig | None:
    """The config of the stack named by the options (None: use ``warmline.toml``).

    Prints the start-up report (what does not run, and what happens instead) to ``out``
    (default stderr).

    Raises:
        SourceError: as :func:`translation_from_args` (a ``ConfigurationError``).
    """
    from warmline.errors import MissingExtraError
    from warmline.templates.report import SourceError

    try:
        translation = translation_from_args(args)
    except MissingExtraError as exc:
        raise SourceError(str(exc)) from exc
    if translation is None:
        return None
    from warmline.templates.report import format_report

    print(format_report(translation), file=out if out is not None else sys.stderr)
    return translation.config
