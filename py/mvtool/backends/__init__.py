"""Proof backends: :mod:`mvtool.backends.smt` (Z3, runs everywhere) and
:mod:`mvtool.backends.lean` (``lake build``, where a Lean toolchain exists)."""
