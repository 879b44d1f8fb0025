"""An environment fails like Lambda's (docs/protocols.md §8.1): read-only task root, a /tmp of
its own, and only the code, its declared dependencies and the runtime's boto3 importable.

Each wrong handler fails as it would on AWS, and the same handler written correctly passes.
The function's code lives in a folder of its own (``fn``), the test's own files beside it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_helpers import CLIENTS, INIT_REPORT_RE, eventually, run, started

from warmline.dev.runtime.spec import FunctionSpec

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux namespaces")

HANDLER = """
import os, sys, time

def handler(event, context):
    do = event["do"]
    if do == "write_task_root":
        with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "out.txt"), "w") as fh:
            fh.write("x")
        return "written"
    if do == "write_tmp":
        with open("/tmp/shared.txt", "w") as fh:
            fh.write(event["text"])
        release = event.get("release")
        while release and not os.path.exists(release):
            time.sleep(0.005)
        return "written"
    if do == "read_tmp":
        with open("/tmp/shared.txt") as fh:  # FileNotFoundError in another environment
            return fh.read()
    if do == "store":
        with open(os.environ["WARMLINE_SQLITE_PATH"] + ".txt", "a") as fh:
            fh.write(event["text"] + "\\n")
        release = event.get("release")
        while release and not os.path.exists(release):
            time.sleep(0.005)
        return "stored"
    if do == "view":
        st = os.statvfs("/tmp")
        return {
            "path": sys.path,
            "cwd": os.getcwd(),
            "tmp_mb": st.f_blocks * st.f_frsize // (1024 * 1024),
            "version": list(sys.version_info[:2]),
            "execution_env": os.environ["AWS_EXECUTION_ENV"],
        }
    if do == "import":
        try:
            module = __import__(event["name"])
        except ImportError as exc:
            return {"error": str(exc)}
        return {"file": getattr(module, "__file__", None)}
    raise ValueError(do)
"""


def function(code: Path, handler: str = "app.handler", **kwargs: object) -> FunctionSpec:
    kwargs.setdefault("timeout_s", 10.0)
    return FunctionSpec(name="f", handler=handler, code_dir=code, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def code(tmp_path: Path) -> Path:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text(HANDLER)
    return folder


@pytest.fixture
def code_in_tmp() -> Iterator[Path]:
    """A code folder under the host's /tmp itself (where ``sam build`` output often is)."""
    folder = Path(tempfile.mkdtemp(prefix="warmline-sandbox-test-", dir="/tmp"))
    (folder / "app.py").write_text(HANDLER)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def isolated(rt: object) -> bool:
    return bool(getattr(rt, "isolated", False))


# --- the task root is read-only ------------------------------------------------------------


@CLIENTS
@pytest.mark.parametrize("where", ["project", "tmp"])
def test_a_handler_that_writes_to_its_task_root_fails_with_erofs(
    where: str, code: Path, code_in_tmp: Path, tmp_path: Path, client: str | None
) -> None:
    root = code if where == "project" else code_in_tmp

    async def main() -> None:
        fn = function(root, runtime_client=client)
        async with started(fn, state_dir=tmp_path / "state") as (rt, _logs):
            assert isolated(rt), rt.notices
            wrong = await rt.invoke("f", {"do": "write_task_root"})
            right = await rt.invoke("f", {"do": "write_tmp", "text": "x"})
        assert wrong.status == "error"
        assert wrong.error is not None
        assert wrong.error["errorType"] == "OSError"
        assert wrong.error["errorMessage"] == (
            f"[Errno 30] Read-only file system: '{root.resolve()}/out.txt'"
        )
        assert not (root / "out.txt").exists()
        assert right.status == "ok", right.error
        assert right.payload == "written"

    run(main())


def test_the_handler_starts_in_its_task_root_which_is_first_on_its_path(
    code: Path, tmp_path: Path
) -> None:
    async def main() -> None:
        async with started(function(code), state_dir=tmp_path / "state") as (rt, _logs):
            view = await rt.invoke("f", {"do": "view"})
        assert view.status == "ok", view.error
        assert view.payload["cwd"] == str(code.resolve())
        assert view.payload["path"][0] == str(code.resolve())

    run(main())


# --- /tmp belongs to one environment --------------------------------------------------------


def test_a_handler_that_expects_tmp_shared_between_environments_fails(
    code: Path, tmp_path: Path
) -> None:
    release = tmp_path / "release"

    async def main() -> None:
        async with started(function(code), state_dir=tmp_path / "state") as (rt, _logs):
            # The writer stays busy, so the reader gets a second environment.
            writer = asyncio.ensure_future(
                rt.invoke("f", {"do": "write_tmp", "text": "hello", "release": str(release)})
            )
            assert await eventually(lambda: len(rt.environments()) == 1)
            reader = await rt.invoke("f", {"do": "read_tmp"})
            release.touch()
            written = await writer
            # The correct expectation: an environment finds its own file again.
            again = await rt.invoke("f", {"do": "read_tmp"})
            assert len({written.environment_id, reader.environment_id}) == 2
        assert written.status == "ok", written.error
        assert reader.status == "error"
        assert reader.error is not None
        assert reader.error["errorType"] == "FileNotFoundError"
        assert "/tmp/shared.txt" in reader.error["errorMessage"]
        assert again.status == "ok", again.error
        assert again.payload == "hello"

    run(main())
    assert not Path("/tmp/shared.txt").exists() or Path("/tmp/shared.txt").read_text() != "hello"


@pytest.mark.parametrize(("storage", "expected"), [(None, 512), (1024, 1024)])
def test_tmp_holds_the_functions_ephemeral_storage(
    storage: int | None, expected: int, code: Path, tmp_path: Path
) -> None:
    extra = {} if storage is None else {"ephemeral_storage_mb": storage}

    async def main() -> None:
        async with started(function(code, **extra), state_dir=tmp_path / "state") as (rt, _):
            view = await rt.invoke("f", {"do": "view"})
        assert view.status == "ok", view.error
        assert view.payload["tmp_mb"] == expected

    run(main())


# --- only what the function declares is importable ------------------------------------------


UNDECLARED = "import requests\n\n\ndef handler(event, context):\n    return requests.__version__\n"


def test_a_handler_that_imports_an_undeclared_package_fails_with_import_module_error(
    tmp_path: Path,
) -> None:
    requests_version = pytest.importorskip("requests").__version__
    wrong = tmp_path / "wrong"
    right = tmp_path / "right"
    for folder in (wrong, right):
        folder.mkdir()
        (folder / "app.py").write_text(UNDECLARED)
    (right / "requirements.txt").write_text("# declared, as sam build reads it\nrequests\n")

    async def main() -> None:
        state = tmp_path / "state"
        async with started(function(wrong), state_dir=state) as (rt, logs):
            failed = await rt.invoke("f", {})
            lines = logs.lines("f")
        async with started(function(right), state_dir=state) as (rt, _logs):
            passed = await rt.invoke("f", {})
        assert failed.status == "init_error"
        assert failed.error == {
            "errorMessage": "Unable to import module 'app': No module named 'requests'",
            "errorType": "Runtime.ImportModuleError",
            "requestId": failed.request_id,
            "stackTrace": [],
        }
        # The log, line for line as CloudWatch shows it.
        first = lines.index(
            "[ERROR] Runtime.ImportModuleError: Unable to import module 'app': "
            "No module named 'requests'"
        )
        assert lines[first + 1] == "Traceback (most recent call last):"
        report = INIT_REPORT_RE.match(lines[first + 2])
        assert report is not None
        assert report["error_type"] == "Runtime.ImportModuleError"
        assert passed.status == "ok", passed.error
        assert passed.payload == requests_version

    run(main())


def test_the_runtime_provides_boto3_and_nothing_else_of_this_machine(
    code: Path, tmp_path: Path
) -> None:
    pytest.importorskip("boto3")
    pytest.importorskip("moto")

    async def main() -> None:
        async with started(function(code), state_dir=tmp_path / "state") as (rt, _logs):
            boto3 = await rt.invoke("f", {"do": "import", "name": "boto3"})
            botocore = await rt.invoke("f", {"do": "import", "name": "botocore"})
            moto = await rt.invoke("f", {"do": "import", "name": "moto"})
            view = await rt.invoke("f", {"do": "view"})
        assert boto3.payload["file"].startswith(str((tmp_path / "state" / "runtime").resolve()))
        assert "file" in botocore.payload
        assert moto.payload == {"error": "No module named 'moto'"}
        site = [p for p in view.payload["path"] if "site-packages" in p]
        assert site == []

    run(main())


WARMLINE_USER = "import warmline\n\n\ndef handler(event, context):\n    return 'ok'\n"


@pytest.mark.parametrize(
    ("bundles", "requirements", "status"),
    [
        (True, None, "ok"),  # a warmline.toml function: deploy package bundles warmline
        (False, None, "init_error"),  # a template's function that does not declare it
        (False, "warmline\n", "ok"),  # ... and one that does
    ],
)
def test_warmline_is_importable_only_where_the_package_would_hold_it(
    bundles: bool, requirements: str | None, status: str, tmp_path: Path
) -> None:
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text(WARMLINE_USER)
    if requirements is not None:
        (folder / "requirements.txt").write_text(requirements)
    spec = function(folder, bundles_warmline=bundles)

    async def main() -> None:
        async with started(spec, state_dir=tmp_path / "state") as (rt, _logs):
            result = await rt.invoke("f", {})
        assert result.status == status, result.error
        if status != "ok":
            assert result.error is not None
            assert result.error["errorMessage"] == (
                "Unable to import module 'app': No module named 'warmline'"
            )

    run(main())


def test_dependencies_are_built_once_per_declaration(tmp_path: Path) -> None:
    pytest.importorskip("requests")
    folder = tmp_path / "fn"
    folder.mkdir()
    (folder / "app.py").write_text(UNDECLARED)
    (folder / "requirements.txt").write_text("requests\n")
    state = tmp_path / "state"

    async def one() -> None:
        async with started(function(folder), state_dir=state) as (rt, _logs):
            assert (await rt.invoke("f", {})).status == "ok"

    run(one())
    first = sorted(p.name for p in (state / "deps" / "f").iterdir())
    run(one())
    assert sorted(p.name for p in (state / "deps" / "f").iterdir()) == first
    (folder / "requirements.txt").write_text("requests\nurllib3\n")
    run(one())
    assert len(list((state / "deps" / "f").iterdir())) == 2


# --- the declared Python version ------------------------------------------------------------


def test_the_declared_python_runs_when_this_machine_has_it(code: Path, tmp_path: Path) -> None:
    from warmline.tools.deploy.package import find_python

    other = (3, 12) if sys.version_info[:2] != (3, 12) else (3, 11)
    found = find_python(other)
    name = f"python{other[0]}.{other[1]}"

    async def main() -> None:
        spec = function(code, runtime=name)
        async with started(spec, state_dir=tmp_path / "state") as (rt, _logs):
            view = await rt.invoke("f", {"do": "view"})
            notices = rt.notices
        assert view.status == "ok", view.error
        if found is None:
            here = list(sys.version_info[:2])
            assert view.payload["version"] == here
            assert any(re.match(rf"^{name} functions run on this machine's", n) for n in notices)
        else:
            assert view.payload["version"] == list(other)
            assert view.payload["execution_env"] == f"AWS_Lambda_{name}"
            assert f"{name} functions run on {found}" in notices

    run(main())


# --- off on request -------------------------------------------------------------------------


def test_no_sandbox_runs_environments_as_host_processes_and_says_so(
    code: Path, tmp_path: Path
) -> None:
    async def main() -> None:
        spec = function(code)
        async with started(spec, sandbox=False, state_dir=tmp_path / "state") as (rt, _logs):
            written = await rt.invoke("f", {"do": "write_task_root"})
            moto = await rt.invoke("f", {"do": "import", "name": "json"})
            notices = rt.notices
        assert written.status == "ok", written.error
        assert (code / "out.txt").exists()
        assert moto.status == "ok"
        assert len(notices) == 1
        assert notices[0].startswith("sandbox off (--no-sandbox)")

    run(main())


def test_every_environment_shares_the_session_store_folder(code: Path, tmp_path: Path) -> None:
    """The SQLite store stands in for a shared table: every environment writes the same file."""
    release = tmp_path / "release"
    state = tmp_path / "state"

    async def main() -> None:
        async with started(function(code), state_dir=state) as (rt, _logs):
            first = asyncio.ensure_future(
                rt.invoke("f", {"do": "store", "text": "one", "release": str(release)})
            )
            assert await eventually(lambda: len(rt.environments()) == 1)
            second = await rt.invoke("f", {"do": "store", "text": "two"})
            release.touch()
            assert (await first).status == "ok"
            assert second.status == "ok", second.error
            assert second.environment_id != (await first).environment_id

    run(main())
    assert sorted((state / "sessions.sqlite3.txt").read_text().split()) == ["one", "two"]


def test_where_the_kernel_refuses_one_line_says_what_is_not_isolated(
    code: Path, tmp_path: Path
) -> None:
    """The probe's refusal (as the zygote reports it) turns the mounts off, not the path."""
    from warmline.dev.runtime.isolation import Isolation

    isolation = Isolation(enabled=True, state_dir=tmp_path / "state")
    isolation.probed("the kernel refused a mount namespace (Operation not permitted)")
    isolation.probed("the kernel refused a mount namespace (Operation not permitted)")
    config = run(isolation.config(function(code), {}))
    assert isolation.notices == [
        "environments are not isolated (the kernel refused a mount namespace (Operation not "
        "permitted)): their task root is writable and /tmp is shared between them; the "
        "import path is Lambda's"
    ]
    assert "sandbox" not in config
    assert config["import_path"][0].startswith(str((tmp_path / "state" / "deps").resolve()))


WRITES_DEPENDENCIES = """
import os
import warmline

def handler(event, context):
    package = os.path.dirname(warmline.__file__)
    out = {"bytecode": os.path.exists(warmline.__spec__.cached)}
    for name, folder in (("package", package), ("dependencies", os.path.dirname(package))):
        try:
            with open(os.path.join(folder, "written-by-a-function.txt"), "w") as fh:
                fh.write("x")
            out[name] = "written"
        except OSError as exc:
            out[name] = exc.errno
    return out
"""


@pytest.mark.parametrize("where", ["project", "tmp"])
def test_a_handler_cannot_write_into_its_dependencies_which_come_compiled(
    where: str, code: Path, code_in_tmp: Path, tmp_path: Path
) -> None:
    """On Lambda the dependencies are in the zip, under the read-only /var/task, with the
    bytecode pip or ``warmline deploy package`` compiled: here the dependency folder and the
    package it links to are read-only too, and their bytecode is there before the first
    cold start."""
    import warmline

    root = code if where == "project" else code_in_tmp
    (root / "app.py").write_text(WRITES_DEPENDENCIES)
    source = Path(warmline.__file__).resolve().parent

    async def main() -> None:
        spec = function(root, bundles_warmline=True)
        async with started(spec, state_dir=tmp_path / "state") as (rt, _logs):
            assert isolated(rt), rt.notices
            result = await rt.invoke("f", {})
        assert result.status == "ok", result.error
        assert result.payload == {"bytecode": True, "package": 30, "dependencies": 30}
        assert not (source / "written-by-a-function.txt").exists()

    run(main())


def test_package_bytecode_compiles_what_is_missing_once_and_says_what_it_cannot(
    tmp_path: Path,
) -> None:
    from importlib.util import cache_from_source

    from warmline.dev.runtime import deps

    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    modules = [package / "__init__.py", package / "sub" / "mod.py"]
    for module in modules:
        module.write_text("VALUE = 1\n")
    assert deps.package_bytecode(package) is None
    assert all(Path(cache_from_source(str(m))).is_file() for m in modules)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "__init__.py").write_text("VALUE = 1\n")
    (blocked / "__pycache__").write_text("a file where the folder would go")
    assert deps.package_bytecode(blocked) == (
        f"bytecode of {blocked} could not be written: every cold start compiles it"
    )
    assert deps.package_bytecode(blocked) is None  # said once per process


def test_a_read_only_bind_covers_what_lies_inside_it_but_a_writable_folder_between() -> None:
    from warmline.dev.runtime.sandbox import _outermost

    venv, project = "/work/venv", "/work/project"
    state = f"{project}/.warmline"
    read_only = [
        f"{venv}/lib/python3.12/site-packages",
        venv,
        f"{venv}/bin",
        project,
        f"{state}/deps/f/0123",
        "/work/venvs",  # a sibling whose name starts like venv's
        venv,
    ]
    assert _outermost(read_only, [state]) == [venv, project, f"{state}/deps/f/0123", "/work/venvs"]


def test_what_the_import_path_links_to_stays_visible_under_the_private_tmp(
    tmp_path: Path,
) -> None:
    """A project checked out under /tmp links its packages from a virtualenv under /tmp:
    the private /tmp would hide them unless their folders are bound into it."""
    from warmline.dev.runtime.isolation import _link_targets

    site = tmp_path / "venv" / "site-packages"
    (site / "warmline").mkdir(parents=True)
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "warmline").symlink_to(site / "warmline")
    (deps / "plain.py").write_text("")
    assert _link_targets([str(deps), str(tmp_path / "missing")]) == [str(site.resolve())]


def test_the_runtimes_own_files_stay_visible_under_the_private_tmp(
    code: Path, tmp_path: Path
) -> None:
    """A checkout under /tmp holds the interpreter's environment (a ``provided`` bootstrap's
    shebang, awslambdaric's ``python``) and the warmline package (the Node.js bootstrap, the
    Runtime API relay): the sandbox policy keeps them visible, as Lambda keeps
    ``/var/runtime`` outside ``/tmp``."""
    import warmline
    from warmline.dev.runtime.isolation import Isolation

    isolation = Isolation(enabled=True, state_dir=tmp_path / "state")
    config = run(isolation.config(function(code), {}))
    visible = config["sandbox"]["read_only"]
    assert sys.prefix in visible
    assert os.path.dirname(os.path.realpath(sys.executable)) in visible
    assert os.path.dirname(os.path.realpath(warmline.__file__)) in visible
