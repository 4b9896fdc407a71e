"""MicroVMM toolchain.

`python -m mvtool` checks the Lean-profile model of the virtio-mmio transport with an SMT
backend (and with Lean where a toolchain exists), extracts the model to Python, and runs it as the
device model of a small KVM virtual machine monitor.
"""

__version__ = "0.1.0"
