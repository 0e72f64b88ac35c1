"""The package's shape: no import cycles, one base for every error of ours, and commands that
import only what they use."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

import sms_worker
from sms_worker.cli import COMMANDS, root
from sms_worker.errors import SmsWorkerError

PACKAGE = Path(sms_worker.__file__).parent


def module_files() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports when it runs: at the top or inside a function
    (a deferred import still closes a cycle), but not under ``if TYPE_CHECKING``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text()))
    return {module for module in found if module in known and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def connect(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in sorted(graph[module]):
            if other not in index:
                connect(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while (top := stack.pop()) != module:
                component.append(top)
            if component:
                found.append(sorted([module, *component]))

    for module in sorted(graph):
        if module not in index:
            connect(module)
    return found


def test_no_module_of_the_package_imports_one_that_imports_it_back():
    known = module_files()
    graph = {name: imported_modules(name, path, known) for name, path in known.items()}
    assert sum(map(len, graph.values())) > 100, "the import graph should have been read"
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_cycle_through_a_deferred_import(tmp_path):
    (tmp_path / "a.py").write_text("from pkg import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from pkg.a import thing\n")
    (tmp_path / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    known = {f"pkg.{name}": tmp_path / f"{name}.py" for name in "abc"}
    graph = {name: imported_modules(name, path, known) for name, path in known.items()}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_every_error_the_package_defines_derives_from_one_base():
    modules = [info.name for info in pkgutil.walk_packages([str(PACKAGE)], "sms_worker.") if ".migrations" not in info.name]
    errors = {
        (obj.__module__, obj.__qualname__): obj
        for name in modules
        for obj in vars(importlib.import_module(name)).values()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__.startswith("sms_worker.")
    }
    assert len(errors) >= 10, "the package's errors should have been found"
    assert [key for key, error in errors.items() if not issubclass(error, SmsWorkerError)] == []


def test_no_module_is_named_like_a_standard_library_module():
    assert [name for name in sorted(module_files()) if name.rpartition(".")[2] in sys.stdlib_module_names] == []


def test_the_root_group_has_every_command_module_and_each_command_under_its_name():
    ctx = click.Context(root)
    commands = {name: root.get_command(ctx, name) for name in root.list_commands(ctx)}
    assert {name: command.name if command else None for name, command in commands.items()} == {name: name for name in COMMANDS}
    command_modules = {path.stem for path in (PACKAGE / "cli").glob("*.py")} - {"__init__", "__main__", "base"}
    assert {home.module for home in COMMANDS.values()} == command_modules


SERVER_LIBRARIES = ("sqlalchemy", "redis", "httpx", "celery", "sms_worker.providers", "sms_worker.tasks")
"""What a command that reaches no server should not import: each costs tens of milliseconds, in
every one of a test run's hundreds of ``sms-worker`` subprocesses."""
IMPORTS_PROBE = """
import json, sys
from sms_worker.cli import main
code = main(sys.argv[1:])
print("\\n" + json.dumps(sorted(sys.modules)))
sys.exit(code)
"""
"""Runs ``sms-worker ARGS`` and prints, last, the modules it imported."""


def imported_by(home: Path, *args: str, **env: str) -> tuple[int, set[str]]:
    """The exit code of ``sms-worker ARGS`` run under ``home`` with ``env``, and the top modules
    and sms_worker's subpackages it imported."""
    environ = {name: value for name, value in os.environ.items() if not name.startswith("SMS_WORKER_")}
    environ.update(SMS_WORKER_HOME=str(home), **env)
    result = subprocess.run([sys.executable, "-c", IMPORTS_PROBE, *args], capture_output=True, text=True, env=environ, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    modules = json.loads(result.stdout.splitlines()[-1])
    return result.returncode, {".".join(name.split(".")[: 2 if name.startswith("sms_worker.") else 1]) for name in modules}


@pytest.mark.parametrize(
    ("args", "env", "exit_code"),
    [
        (["--help"], {}, 0),
        (["segments", "a"], {}, 0),
        (["send", "--help"], {}, 0),
        (["stats"], {"SMS_WORKER_MAX_SEGMENTS": "abc"}, 2),
    ],
)
def test_a_command_that_reaches_no_server_imports_no_server_library(tmp_path, args, env, exit_code):
    code, modules = imported_by(tmp_path, *args, **env)
    assert code == exit_code
    assert [name for name in SERVER_LIBRARIES if name in modules] == []


def test_status_imports_the_database_only(tmp_path):
    assert imported_by(tmp_path, "db", "upgrade")[0] == 0
    code, modules = imported_by(tmp_path, "status", "6f1c1c3e-0000-4000-8000-000000000000")
    assert code == 1
    assert "sqlalchemy" in modules
    assert [name for name in SERVER_LIBRARIES if name != "sqlalchemy" and name in modules] == []
