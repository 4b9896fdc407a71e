"""Python extracted from the Lean model by `python -m mvtool extract`. Do not edit.

`model` is MicroVMM/Model; other modules here are mutants extracted for demonstrations.
"""
