"""The VMM engine: KVM through the C shim, the Linux boot protocol, and the devices."""
