"""The CVE-2026-5747 demonstration on the host's /dev/kvm: every attack guest against the
verified model is absorbed with no access outside the regions validated at activation; against
the vulnerable twin the register rewrites are caught by the access monitor, and the SMT backend
refutes the matching obligation on the twin while proving it on the verified model."""

from __future__ import annotations

import shutil

import pytest
from kvm_util import kvm_unusable_reason
from mvtool.attack import ATTACKS, BY_NAME, load_model, parse_attack_line, refute, run_attack

_REASON = kvm_unusable_reason() or (None if shutil.which("gcc") else
                                    "gcc is needed to build the attack guests")
needs_kvm = pytest.mark.skipif(_REASON is not None, reason=str(_REASON))


@pytest.mark.parametrize("attack", [a.name for a in ATTACKS])
@pytest.mark.kvm
@needs_kvm
def test_verified_model_absorbs(attack):
    r = run_attack(BY_NAME[attack], "verified")
    assert r.outside_count == 0, r.outside_first
    assert r.state_violations == 0, r.state_first
    assert r.exit_kind == "debug-exit", r.exit_reason
    assert r.guest_exit_code == 0, r.guest_line
    assert r.guest_line is not None and r.guest.get("exit") == "0"
    assert r.outcome == "absorbed"
    assert r.requests_served > 0


@pytest.mark.parametrize("attack", ["queue-num-huge", "queue-desc-outside",
                                    "queue-device-overlap"])
@pytest.mark.kvm
@needs_kvm
def test_twin_register_rewrite_is_caught(attack):
    r = run_attack(BY_NAME[attack], "vulnerable")
    assert r.outcome == "caught"
    assert r.outside_count >= 1
    # the runtime state monitor saw the rule break at the rewrite itself
    assert "post-activation-immutable" in r.state_first
    assert r.exit_kind == "containment" and "ContainmentViolation" in r.exit_reason
    # the guest never got to its verdict: the VMM stopped before the out-of-bounds access
    assert r.guest_line is None and r.last_step == "serve"


@pytest.mark.kvm
@needs_kvm
def test_twin_queue_num_overflow_is_the_cve_write():
    """With QueueNum rewritten to 0xffff the twin's first stray access is the used-ring write
    of slot QSIZE (8): 4 + 8*8 bytes into a used ring validated for 6 + 8*8 bytes."""
    r = run_attack(BY_NAME["queue-num-huge"], "vulnerable")
    assert r.outside_first and r.outside_first[0].startswith("used-write of 8 byte(s) at 0x402044")


@pytest.mark.parametrize("obligation,register", [("immut_queue_num", "regQueueNum"),
                                                 ("immut_queue_desc", "regQueueDescHigh")])
def test_smt_refutes_twin_and_proves_verified(obligation, register):
    twin = refute(obligation, "vulnerable", register=register)
    assert twin.status == "counterexample"
    assert twin.pre["status"] == 0xF                       # a live device ...
    assert twin.inputs["off"] == getattr(load_model("verified"), register)  # attacked register
    field = "num" if obligation == "immut_queue_num" else "desc"
    assert any(twin.pre[q][field] != twin.post[q][field] for q in ("q0", "q1"))
    assert refute(obligation, "verified", register=register).status == "proved"


def test_parse_attack_line():
    line, kv = parse_attack_line("STEP x serve\nATTACK x observed a=0x1 exit=0\n")
    assert line == "ATTACK x observed a=0x1 exit=0" and kv == {"a": "0x1", "exit": "0"}
    assert parse_attack_line("STEP x serve\n") == (None, {})


def test_unknown_attack_is_one_line_error(capsys):
    from mvtool.cli import main

    assert main(["attack", "no-such-attack"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mvtool: error: unknown attack 'no-such-attack'")
    assert len(err.strip().splitlines()) == 1
