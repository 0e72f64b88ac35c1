"""Every example a user is given runs as written, on the embedded defaults and the sandbox: the
shell and Python examples of the README and of docs/, the examples in every command's --help,
the providers files in the documents, and the example files (providers.example.toml,
.env.example).

A fenced block is run by its info string: ``sh`` in one bash, which must exit 0; ``sh services``
holds long-running processes, one a line: each must come up and stop cleanly on SIGTERM, and the
README's first (``honcho start``) is the stack every other example runs against; ``python`` in
the project's interpreter; ``toml`` is a providers file, loaded as the worker loads it. The one
block of ``make`` lines (``make demo``, ``make test``) is not run here: ``make test`` is this
suite and ``make demo`` is ``sms-worker demo``, which tests/test_demo.py runs.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from stack import HONCHO, REPO, Running, kill_home, spawn, stack_env

from sms_worker.cli import root
from sms_worker.providers.accounts import parse_providers

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SANDBOX_PORT = re.compile(r"(127\.0\.0\.1):8025\b")
READY = {
    "worker": " ready.",
    "scheduler": "scheduler running",
    "flower": "Visit me at",
    "callbacks": "Uvicorn running on",
    "sandbox": "Uvicorn running on",
}
"""What each long-running command prints once it serves."""

pytestmark = [
    pytest.mark.skipif(HONCHO is None, reason="honcho is not installed (pip install -e '.[test]')"),
    pytest.mark.xdist_group("examples"),
]


@dataclass(frozen=True, slots=True)
class Example:
    """One fenced block of a document: where it is, its language, whether it holds services."""

    document: Path
    line: int
    language: str
    services: bool
    code: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(REPO)}:{self.line}"

    @property
    def lines(self) -> list[str]:
        return [line for line in self.code.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def examples_of(document: Path) -> list[Example]:
    found, block, start, info = [], None, 0, ""
    for number, line in enumerate(document.read_text().splitlines(), 1):
        if line.startswith("```"):
            if block is None:
                block, start, info = [], number, line[3:].strip()
            else:
                language, *words = info.split() or [""]
                found.append(Example(document, start, language, "services" in words, "\n".join(block) + "\n"))
                block = None
        elif block is not None:
            block.append(line)
    return found


EXAMPLES = [example for document in DOCUMENTS for example in examples_of(document)]
MAKE_LINES = [example for example in EXAMPLES if example.language == "sh" and all(line.startswith("make ") for line in example.lines)]
STACK = next(example for example in EXAMPLES if example.services)
FIRST_MESSAGE = next(example for example in EXAMPLES if example.language == "sh" and example.line > STACK.line)
"""The README's first message, sent and watched until delivered while the stack runs."""
SHELL = [example for example in EXAMPLES if example.language == "sh" and not example.services and example not in (*MAKE_LINES, FIRST_MESSAGE)]
PYTHON = [example for example in EXAMPLES if example.language == "python"]
TOML = [example for example in EXAMPLES if example.language == "toml"]
SERVICES = [example for example in EXAMPLES if example.services and example is not STACK]


def help_examples() -> list[str]:
    """The lines under "Examples:" in every command's --help."""
    found = []

    def visit(command: click.Command) -> None:
        lines = (command.help or "").splitlines()
        if "Examples:" in [line.strip() for line in lines]:
            start = [line.strip() for line in lines].index("Examples:") + 1
            for line in lines[start:]:
                if not line.strip():
                    break
                found.append(line.strip())
        if isinstance(command, click.Group):
            ctx = click.Context(command)
            for name in command.list_commands(ctx):
                if (sub := command.get_command(ctx, name)) is not None:
                    visit(sub)

    visit(root)
    return found


@dataclass
class Stack:
    """The README's stack, up: its environment and the directory a user types in (a checkout:
    the project's virtualenv as ``.venv``, the Procfile, the example files)."""

    env: dict[str, str]
    checkout: Path
    running: Running


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("examples")
    env = stack_env(base / "home")
    checkout = base / "checkout"
    checkout.mkdir()
    (checkout / ".venv").symlink_to(sys.prefix)
    (checkout / "Procfile").symlink_to(REPO / "Procfile")
    port = env["SMS_WORKER_SANDBOX_PORT"]
    for name in ("providers.example.toml", ".env.example"):
        (checkout / name).write_text(SANDBOX_PORT.sub(rf"\1:{port}", (REPO / name).read_text()))
    assert len(STACK.lines) == 1, f"{STACK}: the stack is one command"
    running = Running(spawn(STACK.lines[0], env=env, cwd=checkout))
    try:
        running.wait_for("celery@", READY["worker"], READY["scheduler"], "sandbox", timeout=120)
        yield Stack(env, checkout, running)
    finally:
        running.ctrl_c()
        with contextlib.suppress(subprocess.TimeoutExpired):
            running.process.wait(30)
        running.kill()
        kill_home(Path(env["SMS_WORKER_HOME"]))
    assert "Traceback" not in running.output, running.output


def run(code: list[str] | str, stack: Stack, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(code, env=env or stack.env, cwd=cwd or stack.checkout, capture_output=True, text=True, timeout=120)


def assert_ran(example: object, result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{example} exited {result.returncode}:\n{output}"
    assert "Traceback" not in output, f"{example}:\n{output}"


def test_the_documents_hold_the_examples_this_file_runs():
    assert [str(example) for example in MAKE_LINES] == ["README.md:8"], "one block of make lines, the README's first"
    assert MAKE_LINES[0].lines[0].startswith("make demo") and MAKE_LINES[0].lines[1].startswith("make test")
    assert "honcho start" in STACK.code and STACK.document.name == "README.md"
    assert SHELL and PYTHON and TOML and SERVICES and help_examples()


def test_the_readme_first_message_is_delivered(stack):
    result = run(["bash", "-e", "-c", FIRST_MESSAGE.code], stack)
    assert_ran(FIRST_MESSAGE, result)
    assert re.search(r"^\s+status: delivered$", result.stdout, re.MULTILINE), result.stdout


@pytest.mark.parametrize("example", SHELL, ids=str)
def test_a_shell_example_runs(stack, example):
    assert_ran(example, run(["bash", "-e", "-c", example.code], stack))


@pytest.mark.parametrize("example", PYTHON, ids=str)
def test_a_python_example_runs(stack, example):
    assert_ran(example, run([sys.executable, "-c", example.code], stack))


@pytest.mark.parametrize("line", help_examples())
def test_a_help_example_runs(stack, line):
    assert_ran(line, run(["bash", "-e", "-c", line], stack))


@pytest.mark.parametrize("example", TOML, ids=str)
def test_a_providers_file_in_the_documents_loads(example):
    document = tomllib.loads(example.code)
    secrets = {value: "a-secret" for account in document.get("accounts", {}).values() for key, value in account.items() if key.endswith("_env")}
    config = parse_providers(document, secrets, str(example))
    assert config.accounts


def test_providers_example_toml_as_shipped_checks_out_against_the_sandbox(stack):
    file = stack.checkout / "providers.example.toml"
    result = run(["sms-worker", "accounts", "check", "--json"], stack, env=stack.env | {"SMS_WORKER_PROVIDERS_FILE": str(file)})
    assert_ran(file, result)
    assert '"ok": false' not in result.stdout, result.stdout


def test_env_example_copied_to_dot_env_works_as_shipped(stack, tmp_path):
    (tmp_path / ".env").write_text((stack.checkout / ".env.example").read_text())
    own = {k: v for k, v in stack.env.items() if k not in ("SMS_WORKER_TELEKOM_SK_URL",)}
    for command in (["accounts", "check"], ["stats"]):
        assert_ran(".env.example", run(["sms-worker", *command], stack, cwd=tmp_path, env=own))


@pytest.mark.parametrize("example", SERVICES, ids=str)
def test_the_services_of_a_document_start_and_stop_cleanly(example, tmp_path, own_redis):
    """Each line of a block of services, as a deployment runs them: a Redis and a database of its
    own (the variables the block says to set), ports of its own; Ctrl-C stops each cleanly."""
    env = stack_env(tmp_path / "home") | {
        "SMS_WORKER_REDIS_URL": own_redis.url,
        "SMS_WORKER_DATABASE_URL": f"sqlite:///{tmp_path / 'sms_worker.db'}",
    }
    started = [Running(spawn(line, env=env, cwd=REPO)) for line in example.lines]
    try:
        for line, process in zip(example.lines, started, strict=True):
            command = next(word for word in READY if f"sms-worker {word}" in line)
            process.wait_for(READY[command], timeout=90)
        for process in started:
            process.ctrl_c()
        for line, process in zip(example.lines, started, strict=True):
            assert process.process.wait(60) == 0, f"{example}: {line!r} did not stop cleanly:\n{process.output}"
            assert "Traceback" not in process.output, f"{example}: {line!r}:\n{process.output}"
    finally:
        for process in started:
            process.kill()
        kill_home(tmp_path / "home")


def test_the_documents_name_nothing_a_user_does_not_have():
    """A user has the repository: not the provider documents it was built from, nor the
    project's issue tracker or design notes; every link between the documents leads somewhere."""
    for document in DOCUMENTS:
        text = document.read_text()
        for internal in (r"\.\./shared", r"\bseeds/", r"DESIGN-NOTES", r"\bissue \d+", r"\btrap \d+"):
            assert not re.search(internal, text, re.IGNORECASE), f"{document.relative_to(REPO)} names {internal}"
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            assert (document.parent / target).exists(), f"{document.relative_to(REPO)} links to {target}, which is not there"
