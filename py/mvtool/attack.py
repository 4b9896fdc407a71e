"""``mvtool attack``: the CVE-2026-5747 attack guests on real KVM, verified model vs its twin.

Each attack is a freestanding guest (``py/mvtool/guests/freestanding/attacks/<name>.c``) that sets up a
virtio-blk device like a correct driver, then behaves like the hostile root guest of
CVE-2026-5747 (rewrites queue registers after DRIVER_OK, selects non-existent queues, plants
hostile descriptors, resets mid-flight) and keeps submitting ordinary requests so the device uses
whatever configuration it holds. It runs on ``/dev/kvm`` with the VMM's virtio-mmio device over
a scratch disk, driven by one extracted model:

* ``verified`` — ``MicroVMM/Model`` as extracted (``mvtool._extracted.model``);
* ``vulnerable`` — the twin: the same model with the mutant ``vulnerable_twin`` of
  ``tests/mutants/mutants.yaml`` applied (queue-configuration writes accepted after activation,
  the pre-fix behaviour), extracted through the same pipeline.

The access monitor (``mvtool.vmm.access_log``) checks every guest-memory access the device makes
against the regions validated at activation and stops the VMM at the first one outside them.
For each attack on the twin, the SMT backend refutes the catalogue obligation the attack targets
on the twin's model, and its counterexample is shown beside the live run: proof and
demonstration point at the same rule.

``mvtool attack linux`` is the same attack from a root process of the default Linux guest while
its virtio-blk driver is live: ``py/mvtool/guests/linux/attack/queue-rewrite.sh`` rewrites the queue
registers with ``busybox devmem`` and keeps reading ``/dev/vda``. The guest is booted the way
``mvtool boot`` boots it (inside the nested host here), once per model.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from mvtool.errors import MvtoolError
from mvtool.paths import CACHE_DIR, GUESTS_DIR, ROOT

ATTACK_DIR = GUESTS_DIR / "freestanding" / "attacks"
TABLE_DIR = ROOT / "paper" / "tables"
TWIN_MUTANT = "vulnerable_twin"
MODELS = ("verified", "vulnerable")
#: guest RAM of an attack run (attack.h assumes it: GUEST_RAM_SIZE)
GUEST_MEM = 16 << 20
#: sectors of the scratch disk; byte j of sector s is s*13 + j*7 + 1 (attack.h: pattern())
DISK_SECTORS = 64
OPENS = ["MicroVMM.Model", "MicroVMM.Spec", "MicroVMM.Refinement"]
OBLIGATIONS_NAMESPACE = "MicroVMM.Obligations"


@dataclass(frozen=True)
class Attack:
    """One attack guest and what it is about."""

    name: str
    source: str
    kind: str                      #: register | selector | ring | reset
    obligations: tuple[str, ...]   #: catalogue ids of the rules it attacks (first: shown)
    twin: str                      #: expected on the twin: caught | absorbed | any
    summary: str
    #: the register the attack writes (a constant of the model), to focus the SMT query on it
    register: str | None = None


ATTACKS: tuple[Attack, ...] = (
    Attack("queue-num-huge", "queue_num_huge", "register", ("immut_queue_num",), "caught",
           "QueueNum := 0xffff after DRIVER_OK", register="regQueueNum"),
    Attack("queue-num-double", "queue_num_double", "register", ("immut_queue_num",), "caught",
           "QueueNum := 2*QueueNumMax after DRIVER_OK", register="regQueueNum"),
    Attack("queue-desc-outside", "queue_desc_outside", "register", ("immut_queue_desc",),
           "caught", "QueueDesc := outside guest RAM after DRIVER_OK", register="regQueueDescHigh"),
    Attack("queue-driver-outside", "queue_driver_outside", "register", ("immut_queue_driver",),
           "caught", "QueueDriver := outside guest RAM after DRIVER_OK", register="regQueueDriverHigh"),
    Attack("queue-device-outside", "queue_device_outside", "register", ("immut_queue_device",),
           "caught", "QueueDevice := end of guest RAM after DRIVER_OK", register="regQueueDeviceLow"),
    Attack("queue-desc-overlap", "queue_desc_overlap", "register", ("immut_queue_desc",),
           "caught", "QueueDesc := queue 1's used ring after DRIVER_OK", register="regQueueDescLow"),
    Attack("queue-driver-overlap", "queue_driver_overlap", "register", ("immut_queue_driver",),
           "caught", "QueueDriver := queue 1's descriptor table after DRIVER_OK", register="regQueueDriverLow"),
    Attack("queue-device-overlap", "queue_device_overlap", "register", ("immut_queue_device",),
           "caught", "QueueDevice := queue 1's descriptor table after DRIVER_OK", register="regQueueDeviceLow"),
    Attack("queue-ready-toggle", "queue_ready_toggle", "register",
           ("immut_queue_ready", "immut_queue_num"), "took-effect",
           "QueueReady 1->0, QueueNum := 0xffff, QueueReady 0->1 after DRIVER_OK", register="regQueueReady"),
    Attack("queue-sel-out-of-range", "queue_sel_out_of_range", "selector",
           ("queue_sel_out_of_range_writes_ignored", "queue_sel_out_of_range_reads_zero"),
           "absorbed", "QueueSel 2 / 0xffffffff, every queue register written and read"),
    Attack("ring-desc-index", "ring_desc_index", "ring",
           ("desc_access_in_bounds", "chain_length_bounded"), "absorbed",
           "head >= size, next >= size, cyclic chain, avail idx > size ahead"),
    Attack("ring-buffer-bounds", "ring_buffer_bounds", "ring",
           ("buffer_check_means_inside_ram",), "absorbed",
           "buffer len 0xffffffff, outside RAM, wrapping, straddling RAM end, indirect"),
    Attack("reset-midway", "reset_midway", "reset", ("reset_restores_initial_state",),
           "absorbed", "reset with requests pending, notify dead queue, re-activate elsewhere"),
)
BY_NAME = {a.name: a for a in ATTACKS}


# ---- models -----------------------------------------------------------------------------------

def _import_file(module_name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise MvtoolError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@cache
def twin_overrides() -> dict[str, str]:
    """Source overrides of the vulnerable twin (``tests/mutants/mutants.yaml``)."""
    from mvtool.extract import mutant_overrides

    return mutant_overrides(TWIN_MUTANT)


@cache
def load_mutant(mutant_id: str, overrides: tuple[tuple[str, str], ...] | None = None
                ) -> ModuleType:
    """The model with mutant ``mutant_id`` of ``tests/mutants/mutants.yaml`` applied, extracted
    through the same pipeline as the verified model and cached under ``_cache/extracted/``
    (keyed by the mutated sources). ``overrides`` replaces the mutant's own edits."""
    from mvtool.extract import extract_model, mutant_overrides
    from mvtool.leanprofile.project import load_project

    edits = dict(overrides) if overrides is not None else mutant_overrides(mutant_id)
    if not mutant_id.isidentifier():
        raise MvtoolError(f"mutant name {mutant_id!r} is not a Python module name")
    key = hashlib.sha256(json.dumps(sorted(edits.items())).encode()
                         + b"".join(p.read_bytes() for p in
                                    sorted((ROOT / "MicroVMM" / "Model").glob("*.lean"))))
    path = CACHE_DIR / "extracted" / key.hexdigest()[:16] / f"{mutant_id}.py"
    if not path.is_file():
        source = extract_model(load_project(overrides=edits), mutant_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source, encoding="utf-8")
        tmp.replace(path)
    return _import_file(f"mvtool_mutant_{mutant_id}_{key.hexdigest()[:8]}", path)


def load_model(which: str) -> ModuleType:
    """The extracted model ``verified`` (``mvtool._extracted.model``) or ``vulnerable`` (the
    twin: mutant ``vulnerable_twin`` extracted through the same pipeline)."""
    from mvtool.vmm.virtio_mmio import load_model as load_verified

    if which == "verified":
        return load_verified()
    if which != "vulnerable":
        raise MvtoolError(f"unknown model {which!r} (choose verified or vulnerable)")
    return load_mutant(TWIN_MUTANT, tuple(sorted(twin_overrides().items())))


# ---- the SMT side -----------------------------------------------------------------------------

@dataclass
class Refutation:
    """The SMT verdict on one obligation for one model."""

    obligation: str
    status: str                      #: proved | counterexample | failed
    seconds: float
    detail: str = ""
    pre: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    post: dict[str, Any] = field(default_factory=dict)
    failed_conjunct: str | None = None
    restricted_to: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"obligation": self.obligation, "status": self.status,
                "seconds": round(self.seconds, 3), "detail": self.detail,
                "failed_conjunct": self.failed_conjunct, "restricted_to": self.restricted_to,
                "pre_state": self.pre,
                "inputs": self.inputs, "post_state": self.post}

    def lines(self) -> list[str]:
        """Readable lines: the obligation, then pre-state, input and post-state (only the fields
        that matter for a queue-register step)."""
        scope = (f" (restricted to well-formed active states, off = {self.restricted_to})"
                 if self.restricted_to else "")
        head = (f"SMT on this model: {self.obligation}{scope}: {self.status} "
                f"({self.seconds:.2f} s)")
        if self.status != "counterexample":
            return [head + (f" — {self.detail}" if self.detail else "")]
        out = [head]
        if self.failed_conjunct:
            out.append(f"  violated: {self.failed_conjunct}")
        if self.pre:
            out.append(f"  pre-state:  {_fmt_state(self.pre)}")
        if self.inputs:
            out.append("  input:      " + " ".join(f"{k}={_fmt_val(v)}"
                                                 for k, v in self.inputs.items()))
        if self.post:
            out.append(f"  post-state: {_fmt_state(self.post)}")
        return out


def _fmt_val(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return hex(v)
    if isinstance(v, dict):
        return "{" + " ".join(f"{k}={_fmt_val(x)}" for k, x in v.items()) + "}"
    return str(v)


def _fmt_state(s: dict[str, Any]) -> str:
    parts = [f"status={_fmt_val(s.get('status'))}", f"queueSel={_fmt_val(s.get('queueSel'))}"]
    for q in ("q0", "q1"):
        if isinstance(s.get(q), dict):
            parts.append(f"{q}={_fmt_val(s[q])}")
    return " ".join(parts)


@cache
def _project(which: str) -> Any:
    from mvtool.leanprofile.project import load_project

    return load_project(overrides=twin_overrides() if which == "vulnerable" else None)


def refute(obligation_id: str, which: str = "vulnerable", *, register: str | None = None,
           timeout_ms: int = 60_000) -> Refutation:
    """Check the catalogue obligation ``obligation_id`` with Z3 on model ``which``.

    With ``register`` (and an obligation over a state ``s`` and a write ``off``), the query is
    the obligation restricted to well-formed active states and writes to that register, so a
    counterexample has the shape of the live attack: the device is live and the guest writes the
    attacked register. A restricted query that is refuted refutes the obligation itself."""
    from mvtool.backends.smt import check_statement
    from mvtool.catalogue import load_catalogue

    ob = load_catalogue(ROOT).by_id().get(obligation_id)
    if ob is None:
        return Refutation(obligation_id, "failed", 0.0, detail="not in spec/invariants.yaml")
    project = _project(which)
    statement = ob.statement
    names = dict(ob.binder_list)
    if register is not None and names.get("s") == "State" and "off" in names:
        statement = f"wellFormed s → isActive s → off = {register} → {statement}"
    th = project.typecheck_statement(ob.binder_list, statement,
                                     namespace=OBLIGATIONS_NAMESPACE, opens=OPENS,
                                     file=f"{ob.id}.statement")
    r = check_statement(project, th, timeout_ms=timeout_ms)
    out = Refutation(obligation_id, r.status, r.seconds, detail=r.detail,
                     failed_conjunct=r.failed_conjunct,
                     restricted_to=register if statement != ob.statement else None)
    for name, value in r.counterexample.items():
        if isinstance(value, dict) and "status" in value and not out.pre:
            out.pre = value
        else:
            out.inputs[name] = value
    for value in r.derived.values():
        if isinstance(value, dict) and "status" in value:
            out.post = value
            break
    return out


# ---- building and running the guests ----------------------------------------------------------

def _source_dir() -> Path:
    """A build directory holding the freestanding runtime and the attack sources (symlinks),
    in the layout ``build_freestanding`` expects (one directory, ``<name>.c`` per guest)."""
    from mvtool.freestanding_build import SOURCE_DIR

    d = CACHE_DIR / "attack-src"
    d.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, Path] = {}
    for p in SOURCE_DIR.iterdir():
        if p.is_file() and p.suffix in (".c", ".h", ".S") and p.stem not in _GUEST_STEMS():
            wanted[p.name] = p
    for p in ATTACK_DIR.iterdir():
        if p.is_file() and p.suffix in (".c", ".h"):
            wanted[p.name] = p
    for entry in d.iterdir():
        if entry.name not in wanted:
            entry.unlink()
    for name, target in wanted.items():
        link = d / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.exists() or link.is_symlink():
            link.unlink()
        link.symlink_to(target)
    return d


def _GUEST_STEMS() -> set[str]:
    from mvtool.freestanding_build import LIBRARY, SOURCE_DIR

    lib = {Path(x).stem for x in LIBRARY}
    return {p.stem for p in SOURCE_DIR.glob("*.c") if p.stem not in lib}


def build_attack(attack: Attack) -> Path:
    """The flat binary of ``attack`` (built and cached by ``mvtool.freestanding_build``)."""
    from mvtool.freestanding_build import build_freestanding

    return build_freestanding(attack.source, source_dir=_source_dir(),
                              cache_dir=CACHE_DIR / "attack-bin")


def disk_pattern(sectors: int = DISK_SECTORS) -> bytes:
    """The scratch disk's contents: byte j of sector s is ``(s*13 + j*7 + 1) & 0xff``."""
    return b"".join(bytes((s * 13 + j * 7 + 1) & 0xFF for j in range(512))
                    for s in range(sectors))


ATTACK_LINE = re.compile(r"^ATTACK (\S+) observed(.*)$")
STEP_LINE = re.compile(r"^STEP (\S+) (.*)$")


def parse_attack_line(output: str) -> tuple[str | None, dict[str, str]]:
    """The guest's verdict line: (raw line, key -> value), or (None, {}) if it never came."""
    for line in output.splitlines()[::-1]:
        m = ATTACK_LINE.match(line.strip())
        if m:
            return line.strip(), dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
    return None, {}


@dataclass
class AttackRun:
    """What one attack guest did against one model, measured."""

    attack: str
    model: str
    outcome: str                          #: absorbed | caught | took-effect | failed
    guest_line: str | None
    guest: dict[str, str]
    last_step: str | None
    exit_kind: str
    exit_reason: str
    guest_exit_code: int | None
    seconds: float
    requests_served: int
    ignored_writes: dict[str, int]
    device_errors: list[str]
    activations: int
    resets: int
    accesses_checked: int
    outside_count: int
    outside_first: list[str]
    state_violations: int
    state_first: list[str]
    expected: str
    as_expected: bool
    smt: Refutation | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = {k: v for k, v in self.__dict__.items() if k != "smt"}
        d["smt"] = self.smt.as_dict() if self.smt else None
        return d


class MonitoredWindow:
    """The device's MMIO window with the runtime state monitor on every register access: each
    write is checked as a step ``pre -> post`` of the model, each read against the selected
    queue (``mvtool.monitor.StateMonitor``, record mode)."""

    def __init__(self, dev: Any, monitor: Any):
        self.dev, self.monitor = dev, monitor
        self._config = dev._config_base

    def read(self, offset: int, size: int) -> int:
        """Forward a read; check queue-register reads."""
        value = int(self.dev.read(offset, size))
        if offset < self._config and size == 4:
            self.monitor.read(self.dev.state, offset, value)
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        """Forward a write; check the step it made."""
        pre = self.dev.state
        try:
            self.dev.write(offset, size, value)
        finally:
            if offset < self._config:
                post = self.dev.state
                self.monitor.write(pre, offset, value & 0xFFFF_FFFF, post)


def _classify(model: str, stop_kind: str, guest_exit: int | None, outside: int,
              state_violations: int = 0) -> str:
    """caught: the device tried an out-of-region access (the monitor stopped it);
    absorbed: the guest finished and saw spec-mandated behaviour; took-effect: the rewrite
    changed the live configuration (the guest said so, or the state monitor saw the rule break)
    without an out-of-region access; failed: anything else."""
    if outside > 0:
        return "caught"
    if stop_kind == "debug-exit" and guest_exit == 0 and state_violations == 0:
        return "absorbed"
    if (stop_kind == "debug-exit" and guest_exit == 1) or state_violations > 0:
        return "took-effect"
    return "failed"


def expected_outcome(attack: Attack, model: str) -> str:
    """What the demonstration expects: the verified model absorbs everything; the twin is
    caught on the register rewrites and behaves like the verified model elsewhere."""
    return "absorbed" if model == "verified" else attack.twin


def run_attack(attack: Attack, model_name: str, *, stop: bool = True, timeout: float = 30.0,
               kvm_path: str = "/dev/kvm") -> AttackRun:
    """Build ``attack``, boot it on KVM with a virtio-blk device over a scratch disk driven by
    the ``model_name`` model and the access monitor, and report what happened."""
    from mvtool.fuzz import quiet_device_log
    from mvtool.monitor import StateMonitor
    from mvtool.vmm import platform
    from mvtool.vmm.access_log import AccessMonitor
    from mvtool.vmm.freestanding import run_freestanding
    from mvtool.vmm.virtio_blk import VirtioBlkBackend
    from mvtool.vmm.virtio_mmio import VirtioMmioDevice

    model = load_model(model_name)
    binary = build_attack(attack)
    monitor = AccessMonitor(record_only=not stop, name="virtio-blk")
    states = StateMonitor(model)
    devices: list[VirtioMmioDevice] = []
    with tempfile.TemporaryDirectory(prefix="mvtool-attack-") as tmp:
        disk = Path(tmp) / "disk.img"
        disk.write_bytes(disk_pattern())
        backend = VirtioBlkBackend(disk)
        try:
            def setup(machine: Any) -> None:
                dev = VirtioMmioDevice(machine.memory, machine.irq_line(platform.VIRTIO_IRQ_BASE),
                                       backend, model=model, ram_base=0,
                                       ram_size=machine.memory.size, monitor=monitor,
                                       name="virtio-blk")
                machine.attach_mmio(platform.VIRTIO_MMIO_BASE, platform.VIRTIO_MMIO_SIZE,
                                    MonitoredWindow(dev, states), "virtio-blk")
                devices.append(dev)

            with quiet_device_log():
                res = run_freestanding(binary, mem_size=GUEST_MEM, kvm_path=kvm_path,
                                       timeout=timeout, setup=setup)
        finally:
            backend.close()
    dev = devices[0]
    output = res.output.decode(errors="replace")
    line, kv = parse_attack_line(output)
    steps = [m.group(2) for m in (STEP_LINE.match(x.strip()) for x in output.splitlines()) if m]
    kind = res.result.kind.value
    outcome = _classify(model_name, kind, res.exit_code, monitor.violation_count,
                        states.total_violations)
    expected = expected_outcome(attack, model_name)
    return AttackRun(
        attack=attack.name, model=model_name, outcome=outcome, guest_line=line, guest=kv,
        last_step=steps[-1] if steps else None, exit_kind=kind,
        exit_reason=res.result.reason, guest_exit_code=res.exit_code,
        seconds=round(res.result.seconds, 3), requests_served=dev.requests,
        ignored_writes=dict(dev.ignored_writes), device_errors=list(dev.device_errors[:5]),
        activations=dev.activations, resets=dev.resets,
        accesses_checked=sum(monitor.accesses.values()),
        outside_count=monitor.violation_count,
        outside_first=[str(v) for v in monitor.violations[:3]],
        state_violations=states.total_violations,
        state_first=sorted({v.check for v in states.violations}),
        expected=expected,
        as_expected=expected == "any" or outcome == expected,
    )


# ---- reporting ----------------------------------------------------------------------------------

def _text(run: AttackRun) -> list[str]:
    a = BY_NAME[run.attack]
    mark = "ok" if run.as_expected else "UNEXPECTED"
    out = [(f"{run.attack} [{run.model}] -> {run.outcome.upper()} ({mark}; expected "
           f"{run.expected}) — {a.summary}")]
    out.append(f"  guest:  {run.guest_line or '(no verdict line; last step: ' + str(run.last_step) + ')'}")
    ignored = ", ".join(f"{k}×{v}" for k, v in sorted(run.ignored_writes.items())) or "none"
    errs = "; ".join(run.device_errors[:2]) or "none"
    out.append(f"  device: {run.requests_served} requests served, {run.activations} "
               f"activation(s), {run.resets} reset(s), writes ignored: {ignored}")
    out.append(f"          DEVICE_NEEDS_RESET: {len(run.device_errors)} ({errs})")
    out.append(f"  monitor: {run.accesses_checked} guest-memory accesses checked, "
               f"{run.outside_count} outside the regions validated at activation")
    for v in run.outside_first:
        out.append(f"    {v}")
    out.append(f"  state monitor: {run.state_violations} violation(s) over the register steps"
               + (f" ({', '.join(run.state_first)})" if run.state_first else ""))
    out.append(f"  VMM:    {run.exit_kind}: {run.exit_reason} ({run.seconds:.2f} s)")
    if run.smt is not None:
        out.extend("  " + x for x in run.smt.lines())
    return out


def _write_runs_json(path: Path, runs: list[Any], timing_keys: tuple[str, ...]) -> Path:
    """The runs of a table as JSON, without timings: they vary from run to run, and the tables
    keep only what the runs showed."""
    rows = []
    for r in runs:
        d = r.as_dict()
        for k in timing_keys:
            d.pop(k, None)
        if d.get("smt"):
            d["smt"].pop("seconds", None)
        rows.append(d)
    path.write_text(json.dumps({"runs": rows}, indent=2) + "\n", encoding="utf-8")
    return path


def write_tables(runs: list[AttackRun], directory: Path = TABLE_DIR) -> list[Path]:
    """paper/tables/attacks.md and attacks.json from a measured run."""
    directory.mkdir(parents=True, exist_ok=True)
    models = [m for m in MODELS if any(r.model == m for r in runs)]
    by = {(r.attack, r.model): r for r in runs}
    flag = "both" if len(models) > 1 else models[0]
    lines = [(f"<!-- generated by `python -m mvtool attack all --model {flag} --table` from a "
             "measured run on /dev/kvm; do not edit -->"), "",
             "| attack | what the guest does | " + " | ".join(
                 f"{m} model" for m in models) + " |",
             "|---|---|" + "---|" * len(models)]
    for a in ATTACKS:
        cells = []
        for m in models:
            r = by.get((a.name, m))
            if r is None:
                cells.append("not run")
                continue
            cell = f"**{r.outcome}**"
            if r.outcome == "caught":
                cell += f" ({r.outside_count} out-of-region access; VMM stopped)"
            elif r.outcome == "absorbed":
                cell += f" ({r.requests_served} requests served, 0 out-of-region)"
            if r.smt is not None and r.smt.status == "counterexample":
                cell += f"; SMT refutes `{r.smt.obligation}`"
            if not r.as_expected:
                cell += " — UNEXPECTED"
            cells.append(cell)
        lines.append(f"| `{a.name}` | {a.summary} | " + " | ".join(cells) + " |")
    md = directory / "attacks.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [md, _write_runs_json(directory / "attacks.json", runs, ("seconds",))]


# ---- CLI ------------------------------------------------------------------------------------------

def add_arguments(p: argparse.ArgumentParser) -> None:
    """``mvtool attack`` options."""
    p.add_argument("name", nargs="?", default="all",
                   help="attack to run, or 'all' (default): " + ", ".join(BY_NAME)
                   + "; or 'linux': the register rewrite from a root process of the Linux "
                   "guest (booted like `mvtool boot`)")
    p.add_argument("--model", choices=("verified", "vulnerable", "both"), default="verified",
                   help="device model to attack (default verified)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--no-stop", action="store_true",
                   help="record out-of-region accesses without stopping the VMM (counts them all)")
    p.add_argument("--no-smt", action="store_true",
                   help="skip the SMT refutation shown beside the twin's runs")
    p.add_argument("--timeout", type=float, default=None,
                   help=f"seconds per guest (default 30; linux: {LINUX_TIMEOUT:.0f} per boot)")
    p.add_argument("--host", choices=("direct", "nested", "auto"), default="auto",
                   help="linux only: where the guest boots, as for `mvtool boot` (default auto: "
                   "the nested host when this host's KVM is KVM-PVM)")
    p.add_argument("--table", action="store_true",
                   help="write paper/tables/attacks.{md,json} (linux: attacks-linux.{md,json}) "
                   "from this run")
    p.add_argument("--kvm", default="/dev/kvm", help="KVM device (default /dev/kvm)")


def run(args: argparse.Namespace) -> int:
    """Run the attacks; exit 0 when every run matched the expectation (the verified model
    absorbed everything; with the twin, the register rewrites were caught)."""
    if args.name == "linux":
        return run_linux_command(args)
    if args.timeout is None:
        args.timeout = 30.0
    if args.name == "all":
        attacks = list(ATTACKS)
    elif args.name in BY_NAME:
        attacks = [BY_NAME[args.name]]
    else:
        raise MvtoolError(f"unknown attack {args.name!r} (choose from: all, "
                          + ", ".join(BY_NAME) + ")")
    if args.timeout <= 0:
        raise MvtoolError("--timeout must be positive")
    if not os.access(args.kvm, os.R_OK | os.W_OK):
        raise MvtoolError(f"{args.kvm} is not usable (missing or no permission); attacks run "
                          "on real KVM")
    models = list(MODELS) if args.model == "both" else [args.model]
    runs: list[AttackRun] = []
    refutations: dict[str, Refutation] = {}
    for attack in attacks:
        for m in models:
            r = run_attack(attack, m, stop=not args.no_stop, timeout=args.timeout,
                           kvm_path=args.kvm)
            if m == "vulnerable" and not args.no_smt:
                key = f"{attack.obligations[0]}/{attack.register}"
                if key not in refutations:
                    refutations[key] = refute(attack.obligations[0], "vulnerable",
                                              register=attack.register)
                r.smt = refutations[key]
            runs.append(r)
            if not args.json:
                print("\n".join(_text(r)))
                print()
    ok = _report(runs, args, write_tables)
    if not args.json:
        summary: dict[str, dict[str, int]] = {}
        for r in runs:
            summary.setdefault(r.model, {}).setdefault(r.outcome, 0)
            summary[r.model][r.outcome] += 1
        for m, counts in summary.items():
            print(f"{m}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        print("result: " + ("as expected" if ok else "NOT as expected: " + ", ".join(
            f"{r.attack}[{r.model}]={r.outcome}" for r in runs if not r.as_expected)))
    return 0 if ok else 1


def _report(runs: list[Any], args: argparse.Namespace,
            write: Callable[[list[Any]], list[Path]]) -> bool:
    """Write the paper tables if asked, print the JSON report if asked; whether every run went
    as expected."""
    ok = all(r.as_expected for r in runs)
    if args.table:
        written = write(runs)
        if not args.json:
            print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    if args.json:
        print(json.dumps({"ok": ok, "runs": [r.as_dict() for r in runs]}, indent=2))
    return ok


# ---- the Linux guest ------------------------------------------------------------------------------

LINUX_ATTACK_DIR = GUESTS_DIR / "linux" / "attack"
LINUX_ATTACK = "queue-rewrite"
#: Parameters the attack boot adds to the default guest's command line: the script to run, and
#: `iomem=relaxed` because Debian's kernel has CONFIG_STRICT_DEVMEM=y + CONFIG_IO_STRICT_DEVMEM=y
#: (/dev/mem refuses an MMIO range a driver holds; the guest's root chooses its command line).
LINUX_CMDLINE_EXTRA = ("iomem=relaxed",)


def build_attack_initramfs(out: Path | None = None) -> Path:
    """``_cache/guest/initramfs-attack.cpio``: the default guest's initramfs followed by a second
    archive holding ``py/mvtool/guests/linux/attack/*.sh`` under ``protocol.ATTACK_DIR`` (the kernel
    unpacks concatenated archives in order). Rewritten only when its bytes change."""
    from mvtool.guests import default_guest
    from mvtool.guests.cpio import Archive
    from mvtool.guests.protocol import ATTACK_DIR

    guest = default_guest()
    overlay = Archive()
    for script in sorted(LINUX_ATTACK_DIR.glob("*.sh")):
        overlay.file(f"{ATTACK_DIR.strip('/')}/{script.name}", script.read_bytes(), 0o755)
    data = guest.initrd.read_bytes() + overlay.to_bytes()
    path = out or guest.initrd.parent / "initramfs-attack.cpio"
    if not (path.is_file() and path.read_bytes() == data):
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


#: The steps of ``queue-rewrite.sh`` (name, register, what the guest writes) and the catalogue
#: obligation each one attacks, in the order the script runs them.
LINUX_STEPS: tuple[tuple[str, str, str, str], ...] = (
    ("queue-num-huge", "QueueNum", "0xffff", "immut_queue_num"),
    ("queue-desc-outside", "QueueDescHigh", "0x1", "immut_queue_desc"),
    ("queue-device-outside", "QueueDeviceHigh", "0x1", "immut_queue_device"),
)
#: Kernel configuration options that decide whether a root process may map the register window.
DEVMEM_OPTIONS = ("CONFIG_DEVMEM", "CONFIG_STRICT_DEVMEM", "CONFIG_IO_STRICT_DEVMEM",
                  "CONFIG_LOCK_DOWN_KERNEL_FORCE_NONE", "CONFIG_LOCK_DOWN_IN_EFI_SECURE_BOOT")
#: Seconds per Linux boot (boot, disk test, attack, poweroff; measured ~20 s in the nested host).
LINUX_TIMEOUT = 240.0
#: Sectors of the Linux attack disk: DISK_PATTERN repeated (2 MiB), so that the guest's own disk
#: test (which writes DISK_PATTERN at DISK_TEST_OFFSET) leaves the bytes unchanged.
LINUX_DISK_COPIES = 512


def kernel_devmem_config() -> dict[str, str]:
    """The default guest kernel's settings of :data:`DEVMEM_OPTIONS` (``y``, ``n`` for "is not
    set", or ``?`` when the kernel package has no config file)."""
    from mvtool.guests import default_guest

    guest = default_guest()
    config = guest.bzimage.parent / f"config-{guest.release}"
    values = dict.fromkeys(DEVMEM_OPTIONS, "?")
    try:
        text = config.read_text(errors="replace")
    except OSError:
        return values
    for name in DEVMEM_OPTIONS:
        if f"\n{name}=y" in text or text.startswith(f"{name}=y"):
            values[name] = "y"
        elif f"# {name} is not set" in text:
            values[name] = "n"
    return values


def linux_disk_bytes() -> bytes:
    """The attack disk's contents."""
    from mvtool.guests.protocol import DISK_PATTERN

    return DISK_PATTERN * LINUX_DISK_COPIES


def expected_reference_sha(blocks: int) -> str:
    """What the guest's reference read of ``blocks`` 4 KiB blocks must hash to (first 16 hex
    digits of the sha256), from the disk image the host wrote."""
    return hashlib.sha256(linux_disk_bytes()[:blocks * 4096]).hexdigest()[:16]


def parse_linux_lines(lines: list[str]) -> list[tuple[str, dict[str, str]]]:
    """``(what, key -> value)`` for each ``ATTACK linux-<what> observed ...`` console line."""
    out = []
    for raw in lines:
        m = ATTACK_LINE.match(raw.strip())
        if m and m.group(1).startswith("linux-"):
            kv = dict(kv.split("=", 1) for kv in m.group(2).split() if "=" in kv)
            out.append((m.group(1)[len("linux-"):], kv))
    return out


@dataclass
class LinuxStep:
    """One register rewrite of the Linux attack, as the guest reported it."""

    name: str
    register: str
    value: str
    obligation: str
    before: str | None = None          #: read-back before the write
    write: str | None = None           #: done | refused (by /dev/mem)
    after: str | None = None           #: read-back after the write
    io_ok: bool | None = None          #: None: the guest never got to report the reads
    disk_ok: bool | None = None        #: the reads returned the reference bytes

    @property
    def took(self) -> bool:
        """The read-back shows the guest's value."""
        return self.after is not None and _num(self.after) == _num(self.value)


def _num(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


@dataclass
class LinuxRun:
    """What the Linux attack did against one model, measured."""

    model: str
    outcome: str                         #: absorbed | caught | took-effect | prevented | failed
    expected: str
    as_expected: bool
    steps: list[LinuxStep]
    guest_lines: list[str]
    window: str | None
    reference_ok: bool | None            #: the reference read returned the disk image's bytes
    guest_done: bool
    prevented: str | None
    kernel_config: dict[str, str]
    cmdline: str
    vmm_survived: bool                   #: the VMM ended in a controlled way and reported
    exit_kind: str
    exit_reason: str
    status: int | None
    disk_round_trip: str | None
    boot_to_marker_seconds: float | None
    run_seconds: float | None
    requests_served: int
    ignored_writes: dict[str, int]
    device_errors: int
    device_errors_first: list[str]
    accesses_checked: int
    outside_count: int
    host: str
    smt: Refutation | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("smt", "steps")}
        d["steps"] = [dict(s.__dict__, took=s.took) for s in self.steps]
        d["smt"] = self.smt.as_dict() if self.smt else None
        return d


def expected_linux_outcome(model: str) -> str:
    """The verified model ignores the rewrites; the twin uses them and is stopped."""
    return "absorbed" if model == "verified" else "caught"


def linux_run_from(model: str, summary: dict[str, Any] | None, console: list[str],
                   cmdline: str, host: str, config: dict[str, str]) -> LinuxRun:
    """Assemble a :class:`LinuxRun` from the boot's JSON summary (None if the VMM printed none)
    and the guest console."""
    parsed = parse_linux_lines(console)
    steps = [LinuxStep(n, r, v, o) for n, r, v, o in LINUX_STEPS]
    by_name = {s.name: s for s in steps}
    window = None
    reference_ok = None
    prevented = None
    done = False
    for what, kv in parsed:
        if what == "setup":
            if "error" in kv:
                prevented = kv["error"] + (f" ({kv['hint']})" if "hint" in kv else "")
                continue
            window = kv.get("window")
            sha, blocks = kv.get("sha"), _num(kv.get("blocks"))
            if sha is not None and blocks:
                reference_ok = sha == expected_reference_sha(blocks)
        elif what == "done":
            done = True
        elif what in by_name:
            s = by_name[what]
            if kv.get("phase") == "rewrite":
                s.before, s.write, s.after = kv.get("before"), kv.get("write"), kv.get("after")
                if s.write == "refused" and prevented is None:
                    prevented = f"/dev/mem refused the write to {s.register}"
            elif kv.get("phase") == "io":
                s.io_ok, s.disk_ok = kv.get("io_ok") == "1", kv.get("disk_ok") == "1"
        elif "error" in kv and prevented is None:
            prevented = f"{what}: {kv['error']}"
    dev = (summary or {}).get("virtio") or [{}]
    dev0 = dev[0] if dev else {}
    exit_kind = (summary or {}).get("exit_reason", "no-report")
    outside = int(dev0.get("outside_validated_regions", 0))
    if summary is None:
        outcome = "failed"
    elif exit_kind == "containment" or outside > 0:
        outcome = "caught"
    elif prevented is not None:
        outcome = "prevented"
    elif any(s.took for s in steps):
        outcome = "took-effect"
    elif (exit_kind == "poweroff" and done and reference_ok
          and all(s.io_ok and s.disk_ok for s in steps)):
        outcome = "absorbed"
    else:
        outcome = "failed"
    expected = expected_linux_outcome(model)
    return LinuxRun(
        model=model, outcome=outcome, expected=expected, as_expected=outcome == expected,
        steps=steps, guest_lines=[ln.strip() for ln in console
                                  if ATTACK_LINE.match(ln.strip())],
        window=window, reference_ok=reference_ok, guest_done=done, prevented=prevented,
        kernel_config=config, cmdline=cmdline,
        vmm_survived=summary is not None and exit_kind not in ("internal-error", "kvm-error"),
        exit_kind=exit_kind,
        exit_reason=(summary or {}).get("exit_detail", "the VMM printed no summary"),
        status=(summary or {}).get("status"),
        disk_round_trip=(summary or {}).get("disk_round_trip"),
        boot_to_marker_seconds=_round((summary or {}).get("boot_to_marker_seconds")),
        run_seconds=_round((summary or {}).get("run_seconds")),
        requests_served=int(dev0.get("requests", 0)),
        ignored_writes=dict(dev0.get("ignored_writes", {})),
        device_errors=int(dev0.get("device_errors", 0)),
        device_errors_first=list(dev0.get("device_errors_first", [])),
        accesses_checked=int(dev0.get("accesses_checked", 0)),
        outside_count=outside, host=host)


def _round(x: Any) -> float | None:
    return round(float(x), 2) if isinstance(x, (int, float)) else None


def _linux_job(models: list[str], work: Path, initrd: Path, cmdline: str, timeout: float,
               model_files: dict[str, str]) -> str:
    """The shell job that boots the attack guest once per model (inside the nested host, or
    here): each boot's JSON summary, guest console and stderr go to files in ``work``."""
    import shlex

    lines = ["set -u"]
    for m in models:
        argv = ["python3", "-m", "mvtool.vmm.boot_cli", "--host", "direct",
                "--initrd", str(initrd), "--cmdline", cmdline,
                "--disk", str(work / f"{m}.img"), "--json",
                "--console-log", str(work / f"{m}.console"), "--timeout", str(timeout),
                "--model", m]
        if m in model_files:
            argv += ["--model-file", model_files[m]]
        lines.append(f"{shlex.join(argv)} > {shlex.quote(str(work / f'{m}.json'))} "
                     f"2> {shlex.quote(str(work / f'{m}.err'))}")
        lines.append(f"echo \"attack-linux: {m} exit $?\"")
    return "\n".join(lines) + "\n"


def run_linux(models: list[str], *, host: str = "auto", timeout: float = LINUX_TIMEOUT,
              progress: bool = True) -> list[LinuxRun]:
    """Boot the default Linux guest with the attack script once per model, the way ``mvtool
    boot`` boots it (inside the nested host when this host's KVM is KVM-PVM), and report."""
    import shutil
    import subprocess

    from mvtool.guests import default_guest
    from mvtool.vmm.boot_cli import is_kvm_pvm

    guest = default_guest()
    initrd = build_attack_initramfs()
    config = kernel_devmem_config()
    params = [*LINUX_CMDLINE_EXTRA, f"microvmm.attack={LINUX_ATTACK}"]
    cmdline = " ".join([guest.cmdline, *params])
    if host == "auto":
        host = "nested" if is_kvm_pvm() else "direct"
    model_files: dict[str, str] = {}
    for m in models:
        if m != "verified":
            # Extracted here: the repository is read-only inside the nested host.
            model_files[m] = str(getattr(load_model(m), "__file__", ""))

    def say(msg: str) -> None:
        if progress:
            print(f"attack linux: {msg}", file=sys.stderr, flush=True)

    work = Path(tempfile.mkdtemp(prefix="mvtool-attack-linux-"))
    try:
        for m in models:
            (work / f"{m}.img").write_bytes(linux_disk_bytes())
        job = work / "job.sh"
        job.write_text(_linux_job(models, work, initrd, cmdline, timeout, model_files))
        say(f"booting {guest.release} once per model ({', '.join(models)}) on the {host} host; "
            f"command line +{' '.join(params)}")
        if host == "nested":
            from mvtool.nested import prepare_on_host, run_nested

            prepare_on_host()
            run_nested(["sh", str(job)], cwd=ROOT, writable=[work, CACHE_DIR],
                       timeout=len(models) * timeout + 240.0, progress=progress, echo=False,
                       on_line=lambda ln: say(ln.split(":", 1)[1].strip())
                       if ln.startswith("attack-linux:") else None)
        else:
            env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
            subprocess.run(["sh", str(job)], cwd=ROOT, env=env, check=False,
                           timeout=len(models) * timeout + 60.0)
        runs = []
        for m in models:
            try:
                summary = json.loads((work / f"{m}.json").read_text())
            except (OSError, ValueError):
                summary = None
            try:
                console = (work / f"{m}.console").read_text(errors="replace").splitlines()
            except OSError:
                console = []
            run = linux_run_from(m, summary, console, cmdline, host, config)
            if summary is None:
                err = work / f"{m}.err"
                tail = err.read_text(errors="replace").strip().splitlines() if err.is_file() else []
                run.exit_reason = f"the VMM printed no summary: {(tail or ['no output'])[-1]}"
                say(f"{m}: {run.exit_reason}")
            runs.append(run)
        return runs
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _linux_text(run: LinuxRun) -> list[str]:
    mark = "ok" if run.as_expected else "UNEXPECTED"
    out = [(f"linux {LINUX_ATTACK} [{run.model}] -> {run.outcome.upper()} ({mark}; expected "
           f"{run.expected}) — a root process rewrites the live queue with devmem")]
    cfg = " ".join(f"{k}={v}" for k, v in run.kernel_config.items())
    out.append(f"  kernel: {cfg}; booted with {' '.join(LINUX_CMDLINE_EXTRA)}")
    if run.prevented:
        out.append(f"  guest:  PREVENTED by the kernel: {run.prevented} — /dev/mem refuses the "
                   "virtio-mmio window (STRICT_DEVMEM/IO_STRICT_DEVMEM) unless booted with "
                   "iomem=relaxed")
    ref = {True: "matches the disk image", False: "DIFFERS from the disk image",
           None: "not reported"}[run.reference_ok]
    out.append(f"  guest:  window {run.window or '?'}, reference read {ref}")
    for s in run.steps:
        if s.write is None:
            out.append(f"    {s.name}: not reached")
            continue
        io = ("reads not reported (the VMM stopped)" if s.io_ok is None else
              f"reads {'ok' if s.io_ok else 'FAILED'}, "
              f"{'same bytes' if s.disk_ok else 'DIFFERENT bytes'}")
        out.append(f"    {s.name}: {s.register} reads {s.before}, write {s.value} ({s.write}), "
                   f"reads {s.after} afterwards{' (TOOK)' if s.took else ''}; {io}")
    out.append(f"    attack script {'finished' if run.guest_done else 'did not finish'}; guest "
               f"disk test: {run.disk_round_trip or 'not reported'}")
    ignored = ", ".join(f"{k}×{v}" for k, v in sorted(run.ignored_writes.items())) or "none"
    out.append(f"  device: {run.requests_served} requests served, writes ignored: {ignored}")
    errs = "; ".join(run.device_errors_first[:2]) or "none"
    out.append(f"          DEVICE_NEEDS_RESET: {run.device_errors} ({errs})")
    out.append(f"  monitor: {run.accesses_checked} guest-memory accesses checked, "
               f"{run.outside_count} outside the regions validated at activation")
    survived = "yes" if run.vmm_survived else "NO"
    marker = (f", marker after {run.boot_to_marker_seconds:.1f} s"
              if run.boot_to_marker_seconds is not None else "")
    secs = f", run {run.run_seconds:.1f} s" if run.run_seconds is not None else ""
    out.append(f"  VMM:    {run.exit_kind}: {run.exit_reason} (status {run.status}; controlled "
               f"end: {survived}{marker}{secs}; {run.host} host)")
    if run.smt is not None:
        out.extend("  " + x for x in run.smt.lines())
    return out


def _linux_cell(run: LinuxRun, step: LinuxStep) -> str:
    if step.write is None:
        return "not reached (VMM already stopped)" if run.outcome == "caught" else "not reached"
    read = f"reads back {step.after}"
    if step.took:
        read += " (took)"
    if step.io_ok is None:
        if run.outcome == "caught":
            what = run.exit_reason.rsplit("activation: ", 1)[-1]
            what = re.sub(r"0x[0-9a-f]+", "…", what) if what != run.exit_reason else "containment"
            return (f"{read}; **caught**: the next request stopped the VMM ({what}; "
                    f"{run.outside_count} out-of-region access)")
        return f"{read}; reads not reported"
    io = "disk reads ok, same bytes" if step.io_ok and step.disk_ok else "disk reads FAILED"
    return f"{read}{'' if step.took else ' (ignored)'}; {io}"


def write_linux_tables(runs: list[LinuxRun], directory: Path = TABLE_DIR) -> list[Path]:
    """paper/tables/attacks-linux.md and attacks-linux.json from a measured run."""
    directory.mkdir(parents=True, exist_ok=True)
    models = [m for m in MODELS if any(r.model == m for r in runs)]
    by = {r.model: r for r in runs}
    flag = "both" if len(models) > 1 else models[0]
    cfg = ", ".join(f"`{k}={v}`" for k, v in runs[0].kernel_config.items()) if runs else ""
    lines = [(f"<!-- generated by `python -m mvtool attack linux --model {flag} --table` from a "
              "measured run; do not edit -->"), "",
             "| step (root in the Linux guest, virtio-blk live) | " + " | ".join(
                 f"{m} model" for m in models) + " |",
             "|---|" + "---|" * len(models)]
    for i, (name, register, value, _) in enumerate(LINUX_STEPS):
        cells = [_linux_cell(by[m], by[m].steps[i]) for m in models]
        lines.append(f"| `{name}`: {register} := {value} | " + " | ".join(cells) + " |")
    ends = []
    for m in models:
        r = by[m]
        cell = f"**{r.outcome}**: {r.exit_kind}, status {r.status}"
        cell += f"; {r.requests_served} requests, {r.outside_count} out-of-region"
        if not r.as_expected:
            cell += " — UNEXPECTED"
        ends.append(cell)
    lines.append("| end of the run | " + " | ".join(ends) + " |")
    lines += ["", f"Guest: Debian's kernel ({cfg}), booted with "
              f"`{' '.join(LINUX_CMDLINE_EXTRA)}`; `busybox devmem` on the virtio-mmio window; "
              "host: " + ", ".join(sorted({r.host for r in runs})) + "."]
    md = directory / "attacks-linux.md"
    md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [md, _write_runs_json(directory / "attacks-linux.json", runs,
                                 ("boot_to_marker_seconds", "run_seconds"))]


def run_linux_command(args: argparse.Namespace) -> int:
    """``mvtool attack linux``: exit 0 when both models behaved as the demonstration expects."""
    from mvtool.nested import qemu_binary

    if args.no_stop:
        raise MvtoolError("--no-stop is not available for the Linux guest (the boot runs the "
                          "enforcing monitor)")
    timeout = LINUX_TIMEOUT if args.timeout is None else args.timeout
    if timeout <= 0:
        raise MvtoolError("--timeout must be positive")
    from mvtool.vmm.boot_cli import is_kvm_pvm

    if args.host == "direct" and is_kvm_pvm():
        raise MvtoolError("this host's KVM (KVM-PVM) cannot run the Linux guest: use --host "
                          "nested or auto")
    if args.host == "nested" or (args.host == "auto" and is_kvm_pvm()):
        qemu_binary()
    models = list(MODELS) if args.model == "both" else [args.model]
    runs = run_linux(models, host=args.host, timeout=timeout, progress=not args.json)
    for r in runs:
        if r.model == "vulnerable" and not args.no_smt:
            name, _, _, obligation = LINUX_STEPS[0]
            r.smt = refute(obligation, "vulnerable", register=BY_NAME[name].register)
        if not args.json:
            print("\n".join(_linux_text(r)))
            print()
    ok = _report(runs, args, write_linux_tables)
    if not args.json:
        prevented = [r for r in runs if r.outcome == "prevented"]
        if prevented:
            print("the guest kernel prevented the attack: " + prevented[0].prevented)
        print("result: " + ("as expected" if ok else "NOT as expected: " + ", ".join(
            f"{r.model}={r.outcome}" for r in runs if not r.as_expected)))
    return 0 if ok else 1
