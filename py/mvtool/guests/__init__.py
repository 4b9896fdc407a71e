"""Guests: the default Linux guest (Debian's kernel + a busybox initramfs) and its build.

``python -m mvtool guest build`` fetches Debian's kernel with apt (cached under ``_cache/``),
cuts the uncompressed vmlinux out of the bzImage and builds two deterministic initramfs images:
the default guest's and the nested host's (see :mod:`mvtool.nested`).
:func:`default_guest` is what ``mvtool boot`` and the benchmarks boot.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from mvtool.errors import MvtoolError
from mvtool.guests.protocol import (  # noqa: F401 - re-exported for hosts and tests
    BOOT_MARKER,
    DISK_FAIL,
    DISK_MIN_BYTES,
    DISK_OK,
    DISK_PATTERN,
    DISK_PATTERN_SHA256,
    DISK_TEST_OFFSET,
    READ_BENCH,
    READ_BENCH_PARAM,
    disk_round_trip_ok,
)
from mvtool.paths import CACHE_DIR

_MANIFEST = CACHE_DIR / "guest" / "guest.json"
_NOT_BUILT = "default guest not built: run `python -m mvtool guest build`"


@dataclass(frozen=True)
class LinuxGuest:
    """A bootable Linux guest: kernel, initramfs and command line."""

    kernel: Path  #: uncompressed vmlinux ELF if extracted, else the bzImage
    bzimage: Path
    vmlinux: Path | None
    initrd: Path
    cmdline: str
    release: str


@dataclass(frozen=True)
class NestedHostImage:
    """What the nested host (L1) boots: the same kernel with its own initramfs."""

    kernel: Path
    initrd: Path
    cmdline: str


def _manifest() -> dict:
    try:
        data = json.loads(_MANIFEST.read_text())
    except (OSError, ValueError):
        raise MvtoolError(_NOT_BUILT) from None
    return data


def _existing(path: str | None) -> Path | None:
    return Path(path) if path and Path(path).is_file() else None


def default_guest() -> LinuxGuest:
    """The default Linux guest built by ``mvtool guest build``.

    Raises MvtoolError (one line) if it has not been built.
    """
    m = _manifest()
    bzimage, initrd = _existing(m.get("bzimage")), _existing(m.get("initrd"))
    if bzimage is None or initrd is None:
        raise MvtoolError(_NOT_BUILT)
    vmlinux = _existing(m.get("vmlinux"))
    return LinuxGuest(kernel=vmlinux or bzimage, bzimage=bzimage, vmlinux=vmlinux, initrd=initrd,
                      cmdline=m["cmdline"], release=m["release"])


def nested_host_image() -> NestedHostImage:
    """The nested host's kernel (uncompressed if available), initramfs and command line."""
    m = _manifest()
    guest = default_guest()
    initrd = _existing(m.get("host_initrd"))
    if initrd is None:
        raise MvtoolError(_NOT_BUILT)
    return NestedHostImage(kernel=guest.kernel, initrd=initrd, cmdline=m["host_cmdline"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="guest_command", metavar="ACTION")
    b = sub.add_parser("build", help="fetch Debian's kernel (apt) and build the guest and "
                       "nested-host initramfs images (cached, idempotent)")
    b.add_argument("--json", action="store_true", help="print the result as JSON")
    only = b.add_mutually_exclusive_group()
    only.add_argument("--linux-only", action="store_true", help="skip the freestanding guests")
    only.add_argument("--freestanding-only", action="store_true",
                      help="build only the freestanding guests (guests/freestanding/*.c)")
    i = sub.add_parser("info", help="show the built default guest")
    i.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "guest_command", None)
    if action == "build":
        report: dict = {}
        if not args.freestanding_only:
            report |= _build_linux(quiet=args.json)
        if not args.linux_only:
            report["freestanding"] = _build_freestanding(quiet=args.json)
        if args.json:
            print(json.dumps(report, indent=2))
        return 0
    if action == "info":
        g = default_guest()
        if args.json:
            print(json.dumps(_describe(g), indent=2))
        else:
            for k, v in _describe(g).items():
                print(f"{k:8} {v}")
        return 0
    raise MvtoolError("usage: mvtool guest {build,info} [--json]")


def _build_linux(*, quiet: bool) -> dict:
    from mvtool.guests.build import build

    res = build(log=(lambda _msg: None) if quiet else print)
    g = default_guest()
    if not quiet:
        print(f"guest: kernel  {g.kernel}")
        print(f"guest: initrd  {g.initrd} (sha256 {res.guest_sha256[:16]})")
        print(f"guest: host initrd {res.host_initrd} (sha256 {res.host_sha256[:16]})")
        print(f"guest: cmdline {g.cmdline}")
    return _describe(g) | {"initrd_sha256": res.guest_sha256, "host_initrd": str(res.host_initrd),
                           "host_initrd_sha256": res.host_sha256}


def _build_freestanding(*, quiet: bool) -> dict[str, str]:
    from mvtool.freestanding_build import build_freestanding, guest_names

    built = {}
    for name in guest_names():
        built[name] = str(build_freestanding(name))
        if not quiet:
            print(f"guest: freestanding {name} -> {built[name]}")
    return built


def _describe(g: LinuxGuest) -> dict:
    return {"release": g.release, "kernel": str(g.kernel), "bzimage": str(g.bzimage),
            "vmlinux": str(g.vmlinux) if g.vmlinux else None, "initrd": str(g.initrd),
            "cmdline": g.cmdline}
