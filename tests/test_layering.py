"""Dependencies point one way (issue 17, item 4), read from the source: every ``import`` of every
module of sms_worker, at module level, inside functions and under ``TYPE_CHECKING`` alike."""

from __future__ import annotations

import ast
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

from conftest import PYTHON

import sms_worker
from sms_worker.providers.registry import ACCOUNT_TYPES

PACKAGE = Path(sms_worker.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[str]:
    """The modules ``path`` imports: ``from a.b import c`` names ``a.b`` and ``a.b.c`` (``c``
    may be a module), relative imports resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


GRAPH = {module_name(path): set(imported(path)) for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
"""Each module of sms_worker and what it imports (of ours or not)."""


def below(name: str) -> set[str]:
    """``name`` and every module of ours it imports, directly or through others."""
    seen, todo = set(), [name]
    while todo:
        module = todo.pop()
        if module in seen or module not in GRAPH:
            continue
        seen.add(module)
        todo += GRAPH[module]
    return seen


def test_the_producer_api_loads_neither_celery_nor_the_task_modules():
    """A web application that sends messages pays for neither: the producer wakes workers
    through :mod:`sms_worker.queues.wakeups`, with kombu. (That a message so sent is dispatched
    is shown by test_pipeline.py and test_wakeups.py, with real Celery workers.)"""
    probe = (
        "import json, sys\n"
        "from sms_worker import send_sms, send_many\n"
        "import sms_worker.producer\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'celery' or m.startswith('sms_worker.tasks'))))"
    )
    loaded = subprocess.run([PYTHON, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(loaded.stdout) == []


def test_only_the_registry_imports_an_adapter_module():
    """The rest of the package sees adapters through ``providers.base``'s contract and account
    settings through the registry. The adapter modules may import one another's shared parts,
    and the sandbox, which emulates the providers from their documents, imports none: were it to
    share an adapter's reading of a document, a misreading would pass both."""
    adapters = {model.__module__ for model in ACCOUNT_TYPES.values()}
    assert len(adapters) == len(ACCOUNT_TYPES), "one module per adapter"
    allowed = adapters | {"sms_worker.providers.registry"}
    importers = {module: sorted(GRAPH[module] & adapters) for module in GRAPH if module not in allowed and GRAPH[module] & adapters}
    assert importers == {}


def test_the_runtime_and_what_it_holds_import_nothing_from_dispatch_tasks_or_the_cli():
    """The runtime holds the lease and the write-behind (``sms_worker.workers``); dispatch, the
    Celery tasks and the commands use the runtime, never the reverse."""
    above = ("sms_worker.dispatch", "sms_worker.tasks", "sms_worker.cli")
    reached = {module for module in below("sms_worker.runtime") if module.startswith(above)}
    assert "sms_worker.workers.lease" in below("sms_worker.runtime"), "the walk follows the runtime's imports"
    assert reached == set()
