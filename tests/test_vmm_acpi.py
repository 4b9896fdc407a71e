"""ACPI tables: checksums, layout, and the DSDT's AML parsed back (by a decoder here and, when
installed, by ACPICA's iasl disassembler)."""

from __future__ import annotations

import itertools
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from mvtool.vmm import acpi, platform


def _tables(n_virtio: int = 2) -> dict[str, bytes]:
    t = acpi.build_tables([acpi.virtio_slot(i) for i in range(n_virtio)])
    return {name: t.blobs[addr] for name, addr in t.names.items()}


def test_sdt_checksums_and_lengths() -> None:
    for name, blob in _tables().items():
        if name in ("RSDP", "FACS"):
            continue
        assert blob[:4] == name.encode()
        assert struct.unpack_from("<I", blob, 4)[0] == len(blob)
        assert sum(blob) % 256 == 0, name


def test_checksum_detects_a_flipped_byte() -> None:
    blob = bytearray(_tables()["APIC"])
    blob[40] ^= 0x01
    assert sum(blob) % 256 != 0


def test_rsdp_points_at_xsdt() -> None:
    t = acpi.build_tables([])
    rsdp = t.blobs[t.rsdp_addr]
    assert rsdp[:8] == b"RSD PTR " and len(rsdp) == 36
    assert sum(rsdp[:20]) % 256 == 0 and sum(rsdp) % 256 == 0
    assert platform.ACPI_RSDP_ADDR % 16 == 0  # Linux scans 16-byte boundaries
    xsdt_addr = struct.unpack_from("<Q", rsdp, 24)[0]
    assert xsdt_addr == t.names["XSDT"]
    xsdt = t.blobs[xsdt_addr]
    entries = struct.unpack_from(f"<{(len(xsdt) - 36) // 8}Q", xsdt, 36)
    assert set(entries) == {t.names["FACP"], t.names["APIC"]}


def test_tables_do_not_overlap_and_stay_in_reserved_low_memory() -> None:
    t = acpi.build_tables([acpi.virtio_slot(i) for i in range(8)])
    spans = sorted((a, a + len(b)) for a, b in t.blobs.items())
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start
    assert spans[0][0] >= platform.EBDA_START and spans[-1][1] <= platform.HIGH_MEMORY


def test_fadt_fields() -> None:
    t = acpi.build_tables([])
    f = t.blobs[t.names["FACP"]]
    assert len(f) == 276 and f[8] == 6
    assert struct.unpack_from("<II", f, 36) == (t.names["FACS"], t.names["DSDT"])
    assert struct.unpack_from("<I", f, 56)[0] == platform.ACPI_PM1A_EVT_PORT
    assert struct.unpack_from("<I", f, 64)[0] == platform.ACPI_PM1A_CNT_PORT
    assert f[88:90] == bytes([4, 2])
    flags = struct.unpack_from("<I", f, 112)[0]
    assert flags & acpi.FADT_RESET_REG_SUP
    space, width, _, _, addr = struct.unpack_from("<BBBBQ", f, 116)
    assert (space, width, addr) == (1, 8, platform.ACPI_RESET_PORT)
    assert f[128] == platform.ACPI_RESET_VALUE
    assert struct.unpack_from("<Q", f, 140)[0] == t.names["DSDT"]
    assert struct.unpack_from("<Q", f, 148 + 4)[0] == platform.ACPI_PM1A_EVT_PORT
    assert struct.unpack_from("<Q", f, 172 + 4)[0] == platform.ACPI_PM1A_CNT_PORT


def test_madt_entries() -> None:
    m = _tables()["APIC"]
    entries = []
    off = 44
    while off < len(m):
        typ, length = m[off], m[off + 1]
        entries.append((typ, m[off:off + length]))
        off += length
    assert off == len(m)
    assert [t for t, _ in entries] == [0, 1, 2]
    assert struct.unpack_from("<I", entries[0][1], 4)[0] & 1
    assert struct.unpack_from("<I", entries[1][1], 4)[0] == acpi.IOAPIC_ADDR
    _, _, bus, src, gsi, flags = struct.unpack("<BBBBIH", entries[2][1])
    assert (bus, src, gsi, flags) == (0, 9, 9, 0x0D)


# --- a decoder for the AML subset the DSDT uses ----------------------------------------------

def _pkg_len(b: bytes, i: int) -> tuple[int, int]:
    lead = b[i]
    n = lead >> 6
    if n == 0:
        return lead & 0x3F, i + 1
    value = lead & 0x0F
    for k in range(n):
        value |= b[i + 1 + k] << (4 + 8 * k)
    return value, i + 1 + n


def _name(b: bytes, i: int) -> tuple[str, int]:
    prefix = ""
    if b[i] == 0x5C:
        prefix, i = "\\", i + 1
    return prefix + b[i:i + 4].decode(), i + 4


def _data(b: bytes, i: int) -> tuple[object, int]:
    op = b[i]
    if op in (0x00, 0x01):
        return op, i + 1
    if op in (0x0A, 0x0B, 0x0C, 0x0E):
        size = {0x0A: 1, 0x0B: 2, 0x0C: 4, 0x0E: 8}[op]
        return int.from_bytes(b[i + 1:i + 1 + size], "little"), i + 1 + size
    if op == 0x0D:
        end = b.index(0, i + 1)
        return b[i + 1:end].decode(), end + 1
    if op == 0x11:
        length, j = _pkg_len(b, i + 1)
        size, k = _data(b, j)
        end = i + 1 + length
        assert k + size == end
        return bytes(b[k:end]), end
    if op == 0x12:
        length, j = _pkg_len(b, i + 1)
        count, j = b[j], j + 1
        items = []
        end = i + 1 + length
        while j < end:
            item, j = _data(b, j)
            items.append(item)
        assert len(items) == count and j == end
        return items, end
    raise AssertionError(f"unexpected AML opcode {op:#x} at {i}")


def parse_aml(b: bytes, i: int = 0, end: int | None = None) -> list[tuple]:
    end = len(b) if end is None else end
    out: list[tuple] = []
    while i < end:
        op = b[i]
        if op == 0x10:
            length, j = _pkg_len(b, i + 1)
            name, j = _name(b, j)
            out.append(("Scope", name, parse_aml(b, j, i + 1 + length)))
            i = i + 1 + length
        elif op == 0x5B and b[i + 1] == 0x82:
            length, j = _pkg_len(b, i + 2)
            name, j = _name(b, j)
            out.append(("Device", name, parse_aml(b, j, i + 2 + length)))
            i = i + 2 + length
        elif op == 0x08:
            name, j = _name(b, i + 1)
            value, i = _data(b, j)
            out.append(("Name", name, value))
        else:
            raise AssertionError(f"unexpected AML opcode {op:#x} at {i}")
    assert i == end
    return out


def _resources(buf: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 0
    while True:
        tag = buf[i]
        if tag & 0x80:
            length = struct.unpack_from("<H", buf, i + 1)[0]
            out.append((tag, buf[i + 3:i + 3 + length]))
            i += 3 + length
        else:
            length = tag & 0x07
            out.append((tag >> 3, buf[i + 1:i + 1 + length]))
            i += 1 + length
            if tag >> 3 == 0x0F:
                assert i == len(buf)
                return out


def test_dsdt_parses_back() -> None:
    dsdt = _tables(2)["DSDT"]
    tree = parse_aml(dsdt, 36)
    assert [t[0] for t in tree] == ["Scope", "Name"]
    assert tree[1][1:] == ("\\_S5_", [platform.ACPI_S5_SLP_TYP, platform.ACPI_S5_SLP_TYP, 0, 0])
    scope = tree[0]
    assert scope[1] == "\\_SB_"
    devices = {d[1]: {n[1]: n[2] for n in d[2]} for d in scope[2]}
    assert set(devices) == {"COM1", "V000", "V001"}
    for i in range(2):
        dev = devices[f"V00{i}"]
        assert dev["_HID"] == "LNRO0005"
        assert dev["_UID"] == i
        res = _resources(dev["_CRS"])
        mem = dict(res)[0x86]
        _, base, size = struct.unpack("<BII", mem)
        slot = acpi.virtio_slot(i)
        assert (base, size) == (slot.base, slot.size)
        flags, count, gsi = struct.unpack("<BBI", dict(res)[0x89])
        assert (count, gsi) == (1, platform.VIRTIO_IRQ_BASE + i)
        assert flags & 0x01 and flags & 0x02  # consumer, edge-triggered
    com = devices["COM1"]
    io = dict(_resources(com["_CRS"]))[0x08]
    assert struct.unpack("<BHHBB", io)[1] == platform.SERIAL_PORT_BASE


def test_pkg_length_encodings_round_trip() -> None:
    for body in (0, 1, 61, 62, 63, 64, 200, 4000, 70000, 1 << 20):
        enc = acpi.pkg_length(body)
        value, end = _pkg_len(enc + bytes(4), 0)
        assert end == len(enc)
        assert value == body + len(enc)


def test_large_dsdt_uses_multibyte_lengths() -> None:
    dsdt = acpi.dsdt([acpi.virtio_slot(i) for i in range(16)])
    assert len(dsdt) > 700
    tree = parse_aml(dsdt, 36)
    assert len(tree[0][2]) == 17


def test_eisa_id_encoding() -> None:
    # iasl compiles EisaId("PNP0501") to DWordConst 0x0105D041
    assert acpi.eisa_id("PNP0501") == b"\x0c\x41\xd0\x05\x01"


@pytest.mark.skipif(shutil.which("iasl") is None, reason="iasl (acpica-tools) not installed")
def test_iasl_disassembles_the_tables(tmp_path: Path) -> None:
    tables = _tables(2)
    for name in ("DSDT", "FACP", "APIC"):
        (tmp_path / f"{name.lower()}.dat").write_bytes(tables[name])
    proc = subprocess.run(["iasl", "-d", "dsdt.dat", "facp.dat", "apic.dat"], cwd=tmp_path,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dsl = (tmp_path / "dsdt.dsl").read_text()
    assert dsl.count('Name (_HID, "LNRO0005")') == 2
    assert "Memory32Fixed (ReadWrite,\n                    0xD0001000," in dsl
    assert "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )" in dsl
    assert "Name (\\_S5, Package (0x04)" in dsl
    assert 'EisaId ("PNP0501")' in dsl
    facp = (tmp_path / "facp.dsl").read_text()
    assert "PM1A Control Block Address : 00000604" in facp
    assert "Reset Register Supported (V2) : 1" in facp
    assert "Invalid" not in facp and "Invalid" not in dsl
    # Recompile the disassembly: iasl must accept it without errors.
    re = subprocess.run(["iasl", "-p", "re", "dsdt.dsl"], cwd=tmp_path, capture_output=True,
                        text=True, check=False)
    assert re.returncode == 0, re.stdout + re.stderr
