"""The packages depend one way only: server -> engine -> semantic.

``semantic`` turns YAML into a validated model and needs nothing but the standard library and
PyYAML; ``engine`` is pure (sqlglot, no I/O); ``server`` does the I/O, and exactly one module of
it, ``server/warehouse/pool.py``, talks to ClickHouse. Imports are read with ``ast``, so imports
inside functions and under ``TYPE_CHECKING`` count too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CLICKHOUSE_CLIENTS = ("clickhouse_connect", "chdb")

# package -> banned top-level module -> files of the package allowed to import it anyway.
BANNED: dict[str, dict[str, tuple[str, ...]]] = {
    "semantic": {
        "engine": (),
        "server": (),
        "sqlglot": (),
        **{client: () for client in CLICKHOUSE_CLIENTS},
    },
    "engine": {
        "server": (),
        **{client: () for client in CLICKHOUSE_CLIENTS},
    },
    "server": {client: ("server/warehouse/pool.py",) for client in CLICKHOUSE_CLIENTS},
}

SEMANTIC_THIRD_PARTY = ("yaml",)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts)


def collect_imports(source: str, module: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line, imported module)`` for every import in ``source``, wherever it is written.

    ``module`` is the dotted name of the file (``semantic.loader``), used to resolve relative
    imports (for ``p/__init__.py`` it is ``p.__init__``). ``importlib.import_module("x")`` and
    ``__import__("x")`` with a literal name count too.
    """
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: -node.level]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module:
                yield node.lineno, node.module
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func):
            if node.args and isinstance(node.args[0], ast.Constant):
                if isinstance(node.args[0].value, str):
                    yield node.lineno, node.args[0].value


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def top_level(module: str) -> str:
    return module.split(".", 1)[0]


def package_files(root: Path, package: str) -> list[Path]:
    files = sorted((root / package).rglob("*.py"))
    assert files, f"no Python files found under {package}/"
    return files


def violations(root: Path, package: str, banned: dict[str, tuple[str, ...]]) -> list[str]:
    """Every import in ``root/package`` of a banned module, as ``file:line: imports module``."""
    found = []
    for path in package_files(root, package):
        relative = path.relative_to(root).as_posix()
        source = path.read_text(encoding="utf-8")
        for line, imported in collect_imports(source, module_name(path, root)):
            allowed_in = banned.get(top_level(imported))
            if allowed_in is not None and relative not in allowed_in:
                found.append(f"{relative}:{line}: imports {imported}")
    return found


@pytest.mark.parametrize("package", sorted(BANNED))
def test_layers_package_imports_only_lower_layers(package: str) -> None:
    found = violations(REPO, package, BANNED[package])

    assert not found, (
        f"{package}/ imports modules its layer must not use (see docs/architecture.md):\n"
        + "\n".join(found)
    )


def test_layers_semantic_imports_only_stdlib_and_yaml() -> None:
    allowed = {*sys.stdlib_module_names, *SEMANTIC_THIRD_PARTY, "semantic", "__future__"}
    found = [
        f"{path.relative_to(REPO).as_posix()}:{line}: imports {imported}"
        for path in package_files(REPO, "semantic")
        for line, imported in collect_imports(path.read_text(encoding="utf-8"),
                                              module_name(path, REPO))
        if top_level(imported) not in allowed
    ]

    assert not found, "semantic/ may import only the standard library and PyYAML:\n" + "\n".join(
        found
    )


def test_layers_collect_imports_finds_every_form() -> None:
    source = "\n".join([
        "import os, engine.serving.router",
        "from server import app",
        "from . import rules",
        "from ..engine import compiler",
        "def late():",
        "    import clickhouse_connect",
        "    from sqlglot import exp",
        "if TYPE_CHECKING:",
        "    from server.warehouse.statements import Warehouse",
        "importlib.import_module('chdb')",
    ])

    assert sorted(collect_imports(source, "semantic.loader")) == [
        (1, "engine.serving.router"),
        (1, "os"),
        (2, "server"),
        (3, "semantic"),
        (4, "engine"),
        (6, "clickhouse_connect"),
        (7, "sqlglot"),
        (9, "server.warehouse.statements"),
        (10, "chdb"),
    ]


def test_layers_violations_report_file_and_line(tmp_path: Path) -> None:
    package = tmp_path / "semantic"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "bad.py").write_text("import yaml\n\ndef f():\n    from engine import planner\n",
                                    encoding="utf-8")

    assert violations(tmp_path, "semantic", BANNED["semantic"]) == [
        "semantic/bad.py:4: imports engine",
    ]


def test_layers_server_allows_clickhouse_only_in_warehouse(tmp_path: Path) -> None:
    package = tmp_path / "server"
    (package / "warehouse").mkdir(parents=True)
    (package / "warehouse" / "pool.py").write_text("import clickhouse_connect\n",
                                                   encoding="utf-8")
    (package / "app.py").write_text("from clickhouse_connect.driver import Client\n",
                                    encoding="utf-8")

    assert violations(tmp_path, "server", BANNED["server"]) == [
        "server/app.py:1: imports clickhouse_connect.driver",
    ]
