"""Build hook: compiles the C shim (shim/mvshim.c) into ``mvtool._mvshim`` through cffi.

Everything else about the package is declared in pyproject.toml.
"""

from setuptools import setup

setup(cffi_modules=["shim/build_shim.py:ffibuilder"])
