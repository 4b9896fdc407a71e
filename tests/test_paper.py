"""`mvtool paper`: tables come from the project's own commands, and bad arguments are refused."""

from __future__ import annotations

import json
import subprocess
import sys

from mvtool import paths


def _mvtool(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mvtool", *argv], capture_output=True,
                          text=True, check=False, cwd=paths.ROOT)


def test_axioms_table_is_regenerated_from_the_audit() -> None:
    out = _mvtool("paper", "axioms", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["written"]["axioms"] == "paper/tables/axioms.md"
    table = (paths.ROOT / "paper" / "tables" / "axioms.md").read_text()
    audit = json.loads(_mvtool("axioms", "--json").stdout)
    for axiom in audit["axioms"]:
        assert f"`{axiom['name']}`" in table
    assert "not checked here" in table


def test_unknown_table_is_one_error_line() -> None:
    out = _mvtool("paper", "nonsense")
    assert out.returncode != 0
    assert out.stderr.strip().count("\n") == 0
    assert "unknown table 'nonsense'" in out.stderr
    assert "Traceback" not in out.stderr
