"""Command-line interface: ``python -m mvtool <command>``.

Each subcommand lives in its own module, which exposes ``add_arguments(parser)`` and
``run(args) -> int``. Modules are imported only when their command runs, so a missing optional
piece (no KVM, no Lean) never breaks unrelated commands.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Callable

from mvtool.errors import MvtoolError

#: command name -> (module path, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "gen": ("mvtool.gen", "render MicroVMM/Obligations/*.lean from spec/invariants.yaml"),
    "prove": ("mvtool.prove", "check every obligation and print the proof matrix"),
    "extract": ("mvtool.extract", "extract MicroVMM/Model to Python (py/mvtool/_extracted)"),
    "check": ("mvtool.check", "parse and type-check the Lean files against the profile"),
    "bench": ("mvtool.bench", "benchmarks: prove, boot (ratios against a peer)"),
    "guest": ("mvtool.guests", "build the default Linux guest and the freestanding guests"),
    "boot": ("mvtool.vmm.boot_cli", "boot a guest on KVM with the extracted device model"),
    "attack": ("mvtool.attack", "run the CVE-2026-5747 attack guests against a model"),
    "fuzz": ("mvtool.fuzz", "hostile-guest fuzzing of the extracted transport"),
    "axioms": ("mvtool.audit", "list the trusted base: axioms, externs, sorry, native code"),
    "paper": ("mvtool.paper", "regenerate the paper's tables (paper/tables) from measured runs"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser. Only the module of command ``only`` is imported (all of them when
    ``only`` is None): start-up time matters under nested emulation, and a command whose
    dependencies are missing must not break the others."""
    parser = argparse.ArgumentParser(
        prog="mvtool",
        description="MicroVMM toolchain: prove the Lean model of the virtio-mmio transport, "
                    "extract it, and run it as the device model of a KVM VMM.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_path, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_path)
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_path)
        except ModuleNotFoundError as exc:
            if exc.name and module_path.startswith(exc.name):
                p.set_defaults(_missing=True)
                continue
            raise
        module.add_arguments(p)
    return parser


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named on the command line, if it is the first argument."""
    return argv[0] if argv and argv[0] in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(only=_command_of(argv) or "")
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if getattr(args, "_missing", False):
        print(f"mvtool: error: command '{args.command}' is not available", file=sys.stderr)
        return 2
    module = importlib.import_module(args._module)
    return run_reporting_errors(lambda: module.run(args))


def run_reporting_errors(command: Callable[[], int | None]) -> int:
    """Run a command; report a failure as one ``mvtool: …`` line on stderr and an exit status,
    never a traceback (unless ``MVTOOL_DEBUG`` is set)."""
    try:
        return int(command() or 0)
    except MvtoolError as exc:
        print(f"mvtool: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mvtool: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        if os.environ.get("MVTOOL_DEBUG"):
            traceback.print_exc()
        print(f"mvtool: internal error: {type(exc).__name__}: {exc} "
              "(set MVTOOL_DEBUG=1 for a traceback)", file=sys.stderr)
        return 70
