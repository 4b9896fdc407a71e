"""A deterministic ``newc`` cpio writer (the format Linux unpacks as an initramfs).

Entries are written sorted by path with fixed owner (root), fixed mtime and inode numbers
assigned in order, so the same inputs always give the same bytes.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

#: mtime of every entry (a fixed value keeps builds reproducible).
FIXED_MTIME = 0


@dataclass
class Entry:
    mode: int  #: full st_mode (type | permissions)
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


@dataclass
class Archive:
    """An in-memory initramfs tree: path (no leading slash) -> entry."""

    entries: dict[str, Entry] = field(default_factory=dict)

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.entries.setdefault("/".join(parts[:i]), Entry(stat.S_IFDIR | 0o755))

    def dir(self, path: str, perm: int = 0o755) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = Entry(stat.S_IFDIR | perm)

    def file(self, path: str, data: bytes, perm: int = 0o644) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = Entry(stat.S_IFREG | perm, data)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = Entry(stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, path: str, major: int, minor: int, perm: int = 0o600) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries[path] = Entry(stat.S_IFCHR | perm, rdev=(major, minor))

    def to_bytes(self) -> bytes:
        """The archive in ``newc`` format, entries sorted by path, then the trailer."""
        out = bytearray()
        for ino, path in enumerate(sorted(self.entries), start=1):
            e = self.entries[path]
            nlink = 2 if stat.S_ISDIR(e.mode) else 1
            _write(out, path, e.mode, e.data, ino, nlink, e.rdev)
        _write(out, "TRAILER!!!", 0, b"", 0, 1, (0, 0))
        # Pad to 512 bytes like cpio(1) does.
        out += b"\0" * (-len(out) % 512)
        return bytes(out)


def _write(out: bytearray, name: str, mode: int, data: bytes, ino: int, nlink: int,
           rdev: tuple[int, int]) -> None:
    name_b = name.encode() + b"\0"
    fields = (ino, mode, 0, 0, nlink, FIXED_MTIME, len(data), 0, 0, rdev[0], rdev[1],
              len(name_b), 0)
    out += b"070701" + b"".join(b"%08X" % v for v in fields)
    out += name_b
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
