"""A snapshot file: a small header, then one pickled blob per tenant, so a restart can be ready
at once and load each tenant when it is first needed.

Layout: MAGIC, the header's length (8 bytes, big-endian), the header (pickled with
:func:`dump_state`), then the tenants' blobs back to back. The header holds the journal position
the file covers, the registry's own state (everything of `Tenants` but the worlds), the tenants'
order, and for each tenant where its blob lies, the journal entries still to be replayed on top
of it (a tenant that was still dormant when the file was written keeps the blob it had, and the
entries of the crash tail that were its own), and two facts read without loading it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .snapshot import dump_state, load_state

MAGIC = b"AMPS-SIM TENANT SNAPSHOT 2\n"
_LENGTH = struct.Struct(">Q")


@dataclass(frozen=True)
class TenantRecord:
    """Where one tenant's blob lies in a snapshot file, and what to replay on top of it."""

    offset: int  # from the start of the blob area
    length: int
    pending: tuple[int, ...]  # journal seqs (requests and webhook outcomes) not in the blob yet
    realtime: bool  # the tenant's clock is realtime (fixed at its creation)
    webhooks: bool  # it had webhook endpoints when the blob was written


@dataclass(frozen=True)
class SnapshotHeader:
    seq: int  # every journal entry up to this one is in the file (pending entries aside)
    shared: dict[str, Any]  # vars(Tenants) without the worlds
    order: list[str]  # every tenant key, oldest first
    tenants: dict[str, TenantRecord]


class SnapshotFile:
    """An open snapshot file: the header in memory, blobs read on demand."""

    def __init__(self, path: Path, header: SnapshotHeader, fd: int, blobs_at: int) -> None:
        self.path = path
        self.header = header
        self._fd = fd
        self._blobs_at = blobs_at

    @classmethod
    def open(cls, path: Path, live: dict[str, Any]) -> "SnapshotFile":
        fd = os.open(path, os.O_RDONLY)
        try:
            start = os.pread(fd, len(MAGIC) + _LENGTH.size, 0)
            if start[: len(MAGIC)] != MAGIC:
                raise ValueError(f"{path} is not a tenant snapshot")
            (length,) = _LENGTH.unpack(start[len(MAGIC) :])
            header = load_state(os.pread(fd, length, len(MAGIC) + _LENGTH.size), live)
            if not isinstance(header, SnapshotHeader):
                raise ValueError(f"{path} has no snapshot header")
        except BaseException:
            os.close(fd)
            raise
        return cls(path, header, fd, len(MAGIC) + _LENGTH.size + length)

    def blob(self, record: TenantRecord) -> bytes:
        data = os.pread(self._fd, record.length, self._blobs_at + record.offset)
        if len(data) != record.length:
            raise ValueError(f"{self.path} is shorter than its header says")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def write_snapshot_file(
    handle: BinaryIO,
    seq: int,
    shared: dict[str, Any],
    blobs: list[tuple[str, bytes, tuple[int, ...], bool, bool]],
    live: dict[str, Any],
) -> None:
    """Write a whole file to `handle`: `blobs` is (key, blob, pending, realtime, webhooks) in order."""
    records: dict[str, TenantRecord] = {}
    offset = 0
    for key, data, pending, realtime, webhooks in blobs:
        records[key] = TenantRecord(offset, len(data), pending, realtime, webhooks)
        offset += len(data)
    header = dump_state(SnapshotHeader(seq, shared, [key for key, *_ in blobs], records), live)
    handle.write(MAGIC)
    handle.write(_LENGTH.pack(len(header)))
    handle.write(header)
    for _, data, *_ in blobs:
        handle.write(data)
