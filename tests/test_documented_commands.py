"""Every command our documents show a user still works as written.

`make scan` once stopped at its first step because `flask staff create` had gained a required
`--role` and `security/scan.sh` had not, and nothing noticed. So each command line of the README,
`docs/`, `security/` and the `bench/` docstrings (read by tests/support/documented_commands.py) is
checked against the program it names, cheaply: each `flask …` line is parsed by the real command
(its options, choices and required arguments, no callback run) and its `--help` answers; each
`make` target exists and resolves (`make -n`); each `python -m bench.…` module, Granian and pybabel
answer `--help` and know every option shown; and `security/scan.sh` runs for real up to the point
where the scanner itself would start.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.cli import FlaskGroup

from tests.support.documented_commands import (
    ROOT,
    DocumentedCommand,
    alternatives,
    documented_commands,
    flask_app_and_args,
    options_in,
)
from tests.support.in_process import app_environ, migrated_sqlite_url
from tests.support.servers import free_port

BIN = ROOT / ".venv" / "bin"
COMMANDS = documented_commands()


def _of(program: str) -> list[DocumentedCommand]:
    return [command for command in COMMANDS if command.program == program]


def _flask_lines() -> list[DocumentedCommand]:
    """`flask` lines that name a command (not the bare program, nor `flask --app app …` as an example)."""
    return [command for command in _of("flask") if flask_app_and_args(command.words)[1][:1] not in ((), ("…",))]


def _make_lines() -> list[DocumentedCommand]:
    """`make` lines, but not a quoted result such as "`make test: 18 min 53 s`"."""
    return [command for command in _of("make") if not any(word.endswith(":") for word in command.words)]


def _ids(commands: list[DocumentedCommand]) -> list[str]:
    return [f"{command.where} {' '.join(command.words[1:])}"[:90] for command in commands]


def _make_env() -> dict[str, str]:
    # Run from `make test`, a child make inherits MAKEFLAGS and prints "Entering directory".
    return {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}


def test_the_documents_show_commands_of_every_kind() -> None:
    """The reader above finds what it checks: if it stopped finding lines, every check would pass empty."""
    programs = {command.program for command in COMMANDS}
    assert {"flask", "make", "python", "granian", "pybabel"} <= programs
    assert any(command.where.startswith("security/") for command in COMMANDS)
    assert any(command.where.startswith("bench/") for command in COMMANDS)
    assert any(command.words[-2:] == ("--reason", "erasure request ER-2026-114") for command in COMMANDS)


# --- flask ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flask_apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Flask]:
    """The two apps the documents run commands on (`--app app` and `--app app.sandbox`), on a test database."""
    from app import create_app
    from app.sandbox import create_app as create_sandbox_app

    directory = tmp_path_factory.mktemp("documented-commands")
    environ = app_environ(migrated_sqlite_url(directory), directory / "instance", free_port())
    return {"app": create_app(environ), "app.sandbox": create_sandbox_app(environ)}


def _command_group(app: Flask) -> FlaskGroup:
    """The `flask` command itself (built-in and plugin commands such as `db` included), on `app`."""
    return FlaskGroup(create_app=lambda: app, load_dotenv=False, set_debug_flag=False)


def _resolve(root: FlaskGroup, args: tuple[str, ...]) -> tuple[click.Command, click.Context, list[str], list[str]]:
    """The command `args` name, its parent context, its path of names and the words left for it."""
    context = root.make_context("flask", [], resilient_parsing=True)
    command: click.Command = root
    path: list[str] = []
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        found = command.get_command(context, rest[0])
        assert found is not None, f"no command {' '.join([*path, rest[0]])!r}"
        if isinstance(found, click.Group):
            context = found.make_context(rest[0], [], parent=context, resilient_parsing=True)
        path.append(rest.pop(0))
        command = found
    return command, context, path, rest


@pytest.mark.parametrize("documented", _flask_lines(), ids=_ids(_flask_lines()))
def test_documented_flask_command_parses(documented: DocumentedCommand, flask_apps: dict[str, Flask]) -> None:
    app_name, args = flask_app_and_args(documented.words)
    assert app_name in flask_apps, f"{documented.where}: --app {app_name} is not an app of ours"
    for each in alternatives(args):
        command, parent, path, rest = _resolve(_command_group(flask_apps[app_name]), each)
        if isinstance(command, click.Group) and not rest:
            continue  # a group named as a whole ("`flask passid …`"): that it exists is the check
        known = {option for param in command.params for option in (*param.opts, *param.secondary_opts)}
        unknown = [option for option in options_in(tuple(rest)) if option not in known]
        assert not unknown, f"{documented.where}: `flask {' '.join(path)}` has no option {unknown}"
        # Parse the words as the command would (types, choices, required options); prompts get an answer.
        with CliRunner().isolation(input="a-long-enough-password\n" * 2):
            try:
                command.make_context(path[-1], rest, parent=parent).close()
            except click.MissingParameter as missing:
                # Prose naming a command ("`flask passid verify`") gives none of its arguments.
                named_only = not rest and isinstance(missing.param, click.Argument)
                assert named_only, f"{documented.where}: {missing.format_message()}"
            except click.UsageError as problem:
                pytest.fail(f"{documented.where}: `{documented.text}`: {problem.format_message()}")


@pytest.mark.parametrize("app_name", ["app", "app.sandbox"])
def test_every_flask_command_answers_help(app_name: str, flask_apps: dict[str, Flask]) -> None:
    """Every command and group `flask --app …` offers answers `--help` (the first thing a user tries)."""
    root = _command_group(flask_apps[app_name])

    def paths(group: click.Group, context: click.Context, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for name in group.list_commands(context):
            found = group.get_command(context, name)
            if found is None or found.hidden:
                continue
            yield (*prefix, name)
            if isinstance(found, click.Group):
                yield from paths(found, found.make_context(name, [], parent=context, resilient_parsing=True),
                                 (*prefix, name))

    every = list(paths(root, root.make_context("flask", [], resilient_parsing=True), ()))
    assert ("db", "upgrade") in every and (app_name != "app" or ("passid", "redact") in every)
    for path in every:
        answer = CliRunner().invoke(root, [*path, "--help"])
        assert answer.exit_code == 0, f"flask --app {app_name} {' '.join(path)} --help: {answer.output}"
        assert "Usage:" in answer.output


# --- make ----------------------------------------------------------------------------------------


def test_documented_make_targets_exist_and_resolve() -> None:
    lines = _make_lines()
    targets = sorted({word for command in lines for word in command.words[1:]
                      if not word.startswith("-") and "=" not in word})
    assert {"run", "test", "bench", "scan"} <= set(targets)
    for target in targets:
        dry_run = subprocess.run(["make", "--no-print-directory", "-n", target], cwd=ROOT, env=_make_env(),
                                 capture_output=True, text=True, timeout=60)
        where = [command.where for command in lines if target in command.words]
        assert dry_run.returncode == 0, f"`make {target}` ({', '.join(where)}): {dry_run.stderr.strip()}"


# --- programs that answer --help -----------------------------------------------------------------


def _help_of(argv: list[str]) -> str:
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(argv)}: {done.stderr.strip()[-500:]}"
    return done.stdout


def _check_options_against_help(lines: list[DocumentedCommand], help_argv: Callable[[DocumentedCommand], list[str]],
                                options: Callable[[DocumentedCommand], list[str]]) -> None:
    """Each line's options appear in the help of the program it runs (helps fetched two at a time)."""
    argvs = {tuple(help_argv(command)) for command in lines}
    with ThreadPoolExecutor(max_workers=2) as pool:
        helps = dict(zip(argvs, pool.map(lambda argv: _help_of(list(argv)), argvs), strict=True))
    for command in lines:
        text = helps[tuple(help_argv(command))]
        missing = [option for option in options(command)
                   if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)]
        assert not missing, f"{command.where}: `{command.text}` uses {missing}, unknown to {help_argv(command)}"


def _bench_lines() -> list[DocumentedCommand]:
    return [command for command in _of("python") if command.words[1:2] == ("-m",)]


# Every bench module's `--help` in one interpreter: they share their imports, and a process each cost seconds.
_HELP_OF_MODULES = """
import contextlib, io, runpy, sys
for name in sys.argv[1:]:
    sys.argv = [name, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module(name, run_name="__main__", alter_sys=True)
            code = "ran without --help"
        except SystemExit as stop:
            code = stop.code
    print(f"=== {name} {code}\\n{out.getvalue()}", end="")
"""


def test_documented_bench_modules_answer_help_and_know_their_options() -> None:
    lines = _bench_lines()
    modules = sorted({command.words[2] for command in lines})
    assert {"bench.weight", "bench.capacity", "bench.passid_stub"} <= set(modules)
    done = subprocess.run([str(BIN / "python"), "-c", _HELP_OF_MODULES, *modules], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-1000:]
    helps = dict(part.split("\n", 1) for part in done.stdout.split("=== ")[1:])
    for module in modules:
        assert f"{module} 0" in helps, f"python -m {module} --help did not exit 0: {list(helps)}"
    for command in lines:
        text = helps[f"{command.words[2]} 0"]
        shown = options_in(tuple(word.strip("[]") for word in command.words[3:]))
        missing = [option for option in shown if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)]
        assert not missing, f"{command.where}: `{command.text}` uses {missing}, unknown to python -m {command.words[2]}"


def test_documented_python_one_liners_run() -> None:
    """`python -c …` lines (how to make a data key) run as shown."""
    lines = [command for command in _of("python") if command.words[1:2] == ("-c",)]
    assert lines
    for command in lines:
        done = subprocess.run([str(BIN / "python"), *command.words[1:]], cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0 and done.stdout.strip(), f"{command.where}: {done.stderr}"


def test_documented_granian_options_exist() -> None:
    _check_options_against_help(_of("granian"), lambda _command: [str(BIN / "granian"), "--help"],
                                lambda command: options_in(command.words))


def test_documented_pybabel_options_exist() -> None:
    def short_and_long(command: DocumentedCommand) -> list[str]:
        return [word.split("=", 1)[0] for word in command.words[2:] if word.startswith("-")]

    _check_options_against_help(_of("pybabel"), lambda command: [str(BIN / "pybabel"), command.words[1], "--help"],
                                short_and_long)


# --- security/scan.sh ----------------------------------------------------------------------------


def test_scan_sets_up_everything_the_scanner_needs() -> None:
    """`make scan`'s own steps, for real: database, staff account (with its role), `make run`, a signed-in
    cookie that opens the console. Only the scanner (ten minutes, not part of `make test`) is left out."""
    done = subprocess.run(
        ["bash", str(Path("security") / "scan.sh")], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**_make_env(), "SCAN_SETUP_ONLY": "1", "SCAN_PORT": str(free_port())},
    )
    assert done.returncode == 0, f"security/scan.sh stopped before the scanner:\n{done.stdout}\n{done.stderr}"
    assert "Scan setup ready" in done.stdout
