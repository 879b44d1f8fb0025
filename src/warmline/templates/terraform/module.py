"""A Terraform root module read for a local run: blocks, variables and references.

Only module-free configurations are read (a ``module`` block is reported, not followed).
Variables take their value as Terraform does ("Input Variables" in the Terraform docs,
later wins): ``default``, ``TF_VAR_name`` from the environment, ``terraform.tfvars``,
``*.auto.tfvars`` in name order, then ``-var-file`` and ``-var`` in command-line order.
Resource attributes that only exist after ``apply`` (an ARN, an id) get local stand-ins in
AWS's formats, e.g. a function's ``invoke_arn`` names the function so an integration URI
resolves back to it; an API's ``id`` is the emulator's ``apiId``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from warmline.config.model import LOCAL_API_ID
from warmline.templates.report import SourceError
from warmline.templates.terraform.hcl_expr import ExpressionError, evaluate, evaluate_source

__all__ = ["TerraformModule", "load_hcl"]

_TYPED = ("number", "bool", "list", "map", "object", "set", "tuple")


def load_hcl(path: Path, source: Path) -> dict[str, Any]:
    """Parse one ``.tf``/``.tfvars`` file with python-hcl2.

    Raises:
        SourceError: a missing python-hcl2 (naming the extra) or a syntax error.
    """
    try:
        import hcl2
    except ImportError as exc:
        from warmline.errors import MissingExtraError

        raise MissingExtraError("hcl2 (python-hcl2, to read Terraform)", "dev") from exc
    options = hcl2.SerializationOptions(with_comments=False, preserve_heredocs=False)
    try:
        text = path.read_text(encoding="utf-8")
        return dict(hcl2.loads(text, serialization_options=options))
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path.name}: {exc}", source=source) from exc
    except Exception as exc:  # lark's parse errors share no base class with a message
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SourceError(f"{path.name}: not valid HCL: {first}", source=source) from exc


def _label(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


class TerraformModule:
    """The blocks of every ``*.tf`` file in a directory, with lazy evaluation.

    Args:
        directory: the root module.
        variables: ``-var`` values (``name -> text``), applied last.
        var_files: ``-var-file`` paths.
        env: the environment (for ``TF_VAR_*``).
        region, account: stand-ins for ``data.aws_region`` / ``data.aws_caller_identity``.
    """

    def __init__(
        self,
        directory: Path,
        *,
        variables: Mapping[str, str],
        var_files: Sequence[Path],
        env: Mapping[str, str],
        region: str,
        account: str,
    ) -> None:
        self.dir = directory
        self.region = region
        self.account = account
        self.api_id = LOCAL_API_ID
        files = sorted(directory.glob("*.tf"))
        if not files:
            raise SourceError("no *.tf files in this directory", source=directory)
        self.variables_spec: dict[str, dict[str, Any]] = {}
        self.locals_raw: dict[str, Any] = {}
        self.resources: dict[tuple[str, str], dict[str, Any]] = {}
        self.data: dict[tuple[str, str], dict[str, Any]] = {}
        self.modules: list[str] = []
        self.providers: list[dict[str, Any]] = []
        for file in files:
            self._collect(load_hcl(file, directory))
        self._locals: dict[str, Any] = {}
        self._evaluating: set[str] = set()
        self.values = self._variable_values(variables, var_files, env)

    def error(self, message: str, where: str) -> SourceError:
        """A :class:`SourceError` for this module."""
        return SourceError(message, where=where, source=self.dir)

    def _collect(self, parsed: Mapping[str, Any]) -> None:
        for block in parsed.get("variable", []):
            for name, body in block.items():
                self.variables_spec[_label(name)] = body
        for block in parsed.get("locals", []):
            self.locals_raw.update({k: v for k, v in block.items() if not k.startswith("__")})
        for section, target in (("resource", self.resources), ("data", self.data)):
            for block in parsed.get(section, []):
                for kind, named in block.items():
                    for name, body in named.items():
                        target[(_label(kind), _label(name))] = body
        for block in parsed.get("module", []):
            self.modules.extend(_label(name) for name in block)
        for block in parsed.get("provider", []):
            for kind, body in block.items():
                if _label(kind) == "aws":
                    self.providers.append(body)

    # --- variables ------------------------------------------------------------------------

    def _variable_values(
        self, cli: Mapping[str, str], var_files: Sequence[Path], env: Mapping[str, str]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, spec in self.variables_spec.items():
            if "default" in spec:
                values[name] = self._eval_static(spec["default"], f"variable.{name}.default")
            if f"TF_VAR_{name}" in env:
                values[name] = self._typed(name, env[f"TF_VAR_{name}"])
        files = [self.dir / "terraform.tfvars", *sorted(self.dir.glob("*.auto.tfvars")), *var_files]
        for file in files:
            if not file.is_file():
                if file in var_files:
                    raise self.error(f"-var-file {file}: no such file", "")
                continue
            for block_key, value in load_hcl(file, self.dir).items():
                if block_key.startswith("__"):
                    continue
                self._check_declared(block_key, file.name)
                values[block_key] = self._eval_static(value, f"{file.name}.{block_key}")
        for name, text in cli.items():
            self._check_declared(name, "-var")
            values[name] = self._typed(name, text)
        for name in self.variables_spec:
            if name not in values:
                raise self.error(f"has no default: pass -var {name}=VALUE", f"variable.{name}")
        return values

    def _check_declared(self, name: str, origin: str) -> None:
        if name not in self.variables_spec:
            known = ", ".join(self.variables_spec) or "none"
            raise self.error(f"{origin}: no variable {name!r} is declared (declared: {known})", "")

    def _typed(self, name: str, text: str) -> Any:
        kind = str(self.variables_spec[name].get("type", "string")).strip("${}")
        if not kind.startswith(_TYPED):
            return text
        try:
            return evaluate_source(text, self._no_refs, self.dir)
        except ExpressionError as exc:
            raise self.error(
                f"-var value {text!r} is not a {kind}: {exc}", f"variable.{name}"
            ) from exc

    def _eval_static(self, value: Any, where: str) -> Any:
        try:
            return evaluate(value, self._no_refs, self.dir)
        except ExpressionError as exc:
            raise self.error(str(exc), where) from exc

    @staticmethod
    def _no_refs(root: str, keys: list[Any]) -> Any:
        raise ExpressionError(f"references ({root}...) are not allowed here")

    # --- evaluation -----------------------------------------------------------------------

    def attr(self, kind: str, name: str, key: str, default: Any = None) -> Any:
        """A resource's evaluated argument (``default`` if absent).

        Raises:
            SourceError: naming ``kind.name.key`` when it cannot be evaluated.
        """
        body = self.resources.get((kind, name), {})
        if key not in body:
            return default
        return self.eval(body[key], f"{kind}.{name}.{key}")

    def block(self, kind: str, name: str, key: str) -> dict[str, Any]:
        """A nested block's first instance, raw (``{}`` if absent)."""
        blocks = self.resources.get((kind, name), {}).get(key) or []
        first = blocks[0] if isinstance(blocks, list) and blocks else blocks
        return first if isinstance(first, dict) else {}

    def eval(self, value: Any, where: str) -> Any:
        """Evaluate a raw hcl2 value in this module, errors naming ``where``."""
        try:
            return evaluate(value, self.lookup, self.dir)
        except ExpressionError as exc:
            raise self.error(str(exc), where) from exc

    def lookup(self, root: str, keys: list[Any]) -> Any:
        """Resolve a reference ``root.keys...`` (the evaluator's callback)."""
        if root == "var":
            if not keys or keys[0] not in self.values:
                raise ExpressionError(f"no variable var.{keys[0] if keys else ''}")
            return _walk(self.values[keys[0]], keys[1:])
        if root == "local":
            return _walk(self._local(str(keys[0])), keys[1:])
        if root == "path":
            return (
                str(self.dir.resolve())
                if keys and keys[0] in ("module", "root")
                else str(Path.cwd())
            )
        if root == "terraform":
            return "default"
        if root in ("count", "each", "self"):
            raise ExpressionError(f"{root}.* is not supported locally")
        if root == "data":
            return _walk(self._data(str(keys[0]), str(keys[1]), str(keys[2])), keys[3:])
        if len(keys) < 2:
            raise ExpressionError(f"reference {root}.{'.'.join(map(str, keys))} is incomplete")
        return _walk(self.resource_attr(root, str(keys[0]), str(keys[1])), keys[2:])

    def _local(self, name: str) -> Any:
        if name in self._locals:
            return self._locals[name]
        if name not in self.locals_raw:
            raise ExpressionError(f"no local value local.{name}")
        if name in self._evaluating:
            raise ExpressionError(f"local.{name} refers to itself")
        self._evaluating.add(name)
        try:
            self._locals[name] = evaluate(self.locals_raw[name], self.lookup, self.dir)
        finally:
            self._evaluating.discard(name)
        return self._locals[name]

    def _data(self, kind: str, name: str, attribute: str) -> Any:
        body = self.data.get((kind, name))
        if body is None:
            raise ExpressionError(f"no data source data.{kind}.{name}")
        if kind == "aws_region":
            return self.region
        if kind == "aws_caller_identity":
            return self.account
        if kind == "aws_partition":
            return "aws"
        if attribute in body:
            return evaluate(body[attribute], self.lookup, self.dir)
        return f"data.{kind}.{name}.{attribute}"

    def name_of(self, kind: str, name: str) -> str:
        """The physical name: ``function_name``/``name``/``bucket`` if set, else the resource
        name."""
        body = self.resources.get((kind, name), {})
        for key in ("function_name", "name", "bucket"):
            if key in body:
                value = evaluate(body[key], self.lookup, self.dir)
                if isinstance(value, str) and value:
                    return value
        return name

    def resource_attr(self, kind: str, name: str, attribute: str) -> Any:
        """An attribute of a managed resource, with stand-ins for computed ones."""
        if (kind, name) not in self.resources:
            raise ExpressionError(f"no resource {kind}.{name}")
        body = self.resources[(kind, name)]
        region, account = self.region, self.account
        if kind == "aws_apigatewayv2_api":
            if attribute == "api_endpoint":
                return f"wss://{self.api_id}.execute-api.{region}.amazonaws.com"
            if attribute == "execution_arn":
                return f"arn:aws:execute-api:{region}:{account}:{self.api_id}"
            if attribute == "id":
                return self.api_id
        physical = self.name_of(kind, name)
        if kind == "aws_lambda_function":
            arn = f"arn:aws:lambda:{region}:{account}:function:{physical}"
            computed = {
                "arn": arn,
                "qualified_arn": f"{arn}:$LATEST",
                "invoke_arn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/"
                f"{arn}/invocations",
                "id": physical,
            }
            if attribute in computed:
                return computed[attribute]
        if attribute in body:
            return evaluate(body[attribute], self.lookup, self.dir)
        service = {"aws_dynamodb_table": "dynamodb", "aws_sqs_queue": "sqs", "aws_sns_topic": "sns"}
        if kind == "aws_sqs_queue" and attribute in ("url", "id"):
            return f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
        if attribute == "arn":
            svc = service.get(kind, kind.split("_")[1] if "_" in kind else kind)
            prefix = "table/" if kind == "aws_dynamodb_table" else ""
            return f"arn:aws:{svc}:{region}:{account}:{prefix}{physical}"
        if attribute == "id":
            return f"{kind}.{name}" if kind.startswith("aws_apigatewayv2_") else physical
        if attribute == "name":
            return physical
        return f"{kind}.{name}.{attribute}"


def _walk(value: Any, keys: list[Any]) -> Any:
    for key in keys:
        try:
            value = value[int(key)] if isinstance(value, list) else value[key]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ExpressionError(f"no element {key!r} in {value!r}") from exc
    return value
