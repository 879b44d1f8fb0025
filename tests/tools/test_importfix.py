"""warmline coldstart's fixes: the import statement behind each chain edge, and its pattern."""

from __future__ import annotations

from pathlib import Path

from warmline.tools.coldstart import Chain
from warmline.tools.importfix import find_import, fixes_for, slow_statement


def write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_plain_and_dotted_imports_are_found_at_module_level(tmp_path: Path) -> None:
    file = write(
        tmp_path / "mod.py",
        "import os\n\ndef later():\n    import boto3\n\ntry:\n    import boto3.session as s\n"
        "except ImportError:\n    s = None\n",
    )
    site = find_import(file, "mod", "boto3")
    assert site is not None and (site.line, site.code) == (7, "import boto3.session as s")
    assert find_import(file, "mod", "json") is None


def test_an_import_only_inside_a_function_is_not_a_cold_start_edge(tmp_path: Path) -> None:
    file = write(tmp_path / "mod.py", "def handler(e, c):\n    import boto3\n")
    assert find_import(file, "mod", "boto3") is None


def test_relative_imports_resolve_against_the_package(tmp_path: Path) -> None:
    init = write(
        tmp_path / "pkg" / "__init__.py",
        '"""Barrel."""\nfrom .utils import *\nfrom . import tables\n',
    )
    utils = find_import(init, "pkg", "pkg.utils")
    assert utils is not None and (utils.line, utils.code) == (2, "from .utils import *")
    tables = find_import(init, "pkg", "pkg.tables")
    assert tables is not None and tables.line == 3
    sub = write(tmp_path / "pkg" / "sub.py", "from .utils import client\n")
    found = find_import(sub, "pkg.sub", "pkg.utils")
    assert found is not None and found.line == 1


def test_the_first_statement_doing_work_is_named(tmp_path: Path) -> None:
    file = write(
        tmp_path / "tables.py",
        '"""Tables."""\nimport json\n\nSIZE = 10\n\ndef f():\n    return 1\n\n'
        "TABLE = {i: str(i) for i in range(SIZE)}\n",
    )
    site = slow_statement(file)
    assert site is not None and site.line == 9
    assert slow_statement(write(tmp_path / "quiet.py", "import json\nX = 1\n")) is None


def test_a_barrel_chain_gets_a_fix_on_every_own_edge(tmp_path: Path) -> None:
    files = {
        "handler": write(tmp_path / "handler.py", "import yourapp\n"),
        "yourapp": write(tmp_path / "yourapp" / "__init__.py", "from .utils import *\n"),
        "yourapp.utils": write(tmp_path / "yourapp" / "utils.py", "import os\nimport boto3\n"),
    }
    chain = Chain("boto3", ("handler", "yourapp", "yourapp.utils"), 250.0)
    utils, barrel, handler = fixes_for(chain, files)
    assert utils.site is not None and utils.site.where(str(tmp_path)) == "yourapp/utils.py:2"
    assert "inside the function that uses it" in utils.advice
    assert barrel.site is not None and barrel.site.code == "from .utils import *"
    assert "PEP 562" in barrel.advice and "__getattr__" in barrel.advice
    assert handler.site is not None and handler.site.where(str(tmp_path)) == "handler.py:1"
    assert "from yourapp.utils import" in handler.advice and "barrel package" in handler.advice


def test_a_slow_own_module_gets_its_work_and_its_import_named(tmp_path: Path) -> None:
    files = {
        "handler": write(tmp_path / "handler.py", "from yourapp import tables\n"),
        "yourapp": write(tmp_path / "yourapp" / "__init__.py", ""),
        "yourapp.tables": write(
            tmp_path / "yourapp" / "tables.py", "import json\nTABLE = json.loads('[1]' * 1)\n"
        ),
    }
    chain = Chain("yourapp.tables", ("handler",), 40.0, own=True)
    work, edge = fixes_for(chain, files)
    assert work.site is not None and work.site.line == 2
    assert "functools.cache" in work.advice and "40.0 ms" in work.advice
    assert edge.site is not None and edge.site.code == "from yourapp import tables"
    assert "inside the function that uses it" in edge.advice


def test_edges_outside_the_users_code_get_no_fix() -> None:
    chain = Chain("botocore", ("handler", "boto3"), 200.0)
    assert fixes_for(chain, {}) == []
