"""The PostgreSQL wire protocol's messages (version 3.0), as bytes: what the server sends, and a
reader for what clients send. No I/O here (``server.sql.connection`` does it)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from server.sql.types import PgType

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
CANCEL_REQUEST = 80877102

_INT32 = struct.Struct("!i")
_INT16 = struct.Struct("!h")


class ProtocolError(Exception):
    """A message that breaks the protocol (the connection is closed after saying so)."""


#: a message up to this size that is larger than accepted is read past and refused (the
#: connection goes on); a larger one ends the connection
DISCARD_LIMIT = 64 * 1024 * 1024


class Oversized(Exception):
    """A message larger than the server accepts, read past."""

    def __init__(self, kind: bytes, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def message(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + _INT32.pack(len(payload) + 4) + payload


def cstring(text: str) -> bytes:
    return text.replace("\x00", "").encode() + b"\x00"


def authentication_ok() -> bytes:
    return message(b"R", _INT32.pack(0))


def authentication_cleartext() -> bytes:
    return message(b"R", _INT32.pack(3))


def negotiate_protocol(minor: int, unknown: list[str]) -> bytes:
    """NegotiateProtocolVersion: the newest minor version of 3 spoken, options not known."""
    return message(b"v", _INT32.pack(minor) + _INT32.pack(len(unknown))
                   + b"".join(cstring(name) for name in unknown))


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstring(name) + cstring(value))


def parameter_statuses(version: str, user: str, application: str) -> list[bytes]:
    """The ParameterStatus messages after authentication (psycopg2 needs client_encoding;
    psycopg2 sets DateStyle itself unless it starts with ISO)."""
    statuses = {"server_version": version, "server_encoding": "UTF8",
                "client_encoding": "UTF8", "DateStyle": "ISO, MDY", "TimeZone": "UTC",
                "IntervalStyle": "postgres", "integer_datetimes": "on",
                "standard_conforming_strings": "on", "is_superuser": "off",
                "session_authorization": user, "application_name": application,
                "default_transaction_read_only": "on", "in_hot_standby": "off"}
    return [parameter_status(k, v) for k, v in statuses.items()]


def startup_parameters(payload: bytes) -> dict[str, str]:
    """The name/value pairs of a start-up packet (after its protocol version).

    >>> startup_parameters(b"\\x00\\x03\\x00\\x00user\\x00ann\\x00database\\x00db\\x00\\x00")
    {'user': 'ann', 'database': 'db'}
    """
    parts = payload[4:].split(b"\x00")
    return {parts[i].decode(errors="replace"): parts[i + 1].decode(errors="replace")
            for i in range(0, len(parts) - 1, 2) if parts[i]}


def backend_key(pid: int, secret: int) -> bytes:
    return message(b"K", struct.pack("!iI", pid, secret))


def ready_for_query(status: bytes) -> bytes:
    return message(b"Z", status)


def row_description(names: Sequence[str], types: Sequence[PgType],
                    formats: Sequence[int]) -> bytes:
    parts = [_INT16.pack(len(names))]
    for name, typed, fmt in zip(names, types, formats, strict=True):
        parts.append(cstring(name) + struct.pack("!ihihih", 0, 0, typed.oid, typed.size, -1,
                                                 fmt))
    return message(b"T", b"".join(parts))


def data_row(values: Sequence[bytes | None]) -> bytes:
    parts = [_INT16.pack(len(values))]
    for value in values:
        if value is None:
            parts.append(_INT32.pack(-1))
        else:
            parts.append(_INT32.pack(len(value)) + value)
    return message(b"D", b"".join(parts))


def split_rows(rows: bytes) -> Iterable[bytes]:
    """The DataRow messages of a run of them, one by one."""
    offset = 0
    while offset < len(rows):
        length = _INT32.unpack_from(rows, offset + 1)[0]
        yield rows[offset:offset + 1 + length]
        offset += 1 + length


def command_complete(tag: str) -> bytes:
    return message(b"C", cstring(tag))


def error_response(code: str, text: str, hint: str | None = None,
                   severity: str = "ERROR") -> bytes:
    fields = [b"S" + cstring(severity), b"V" + cstring(severity), b"C" + cstring(code),
              b"M" + cstring(text)]
    if hint:
        fields.append(b"H" + cstring(hint))
    return message(b"E", b"".join(fields) + b"\x00")


def notice(text: str) -> bytes:
    return message(b"N", b"S" + cstring("NOTICE") + b"V" + cstring("NOTICE") + b"C"
                   + cstring("00000") + b"M" + cstring(text) + b"\x00")


def parameter_description(types: Sequence[PgType]) -> bytes:
    return message(b"t", _INT16.pack(len(types)) + b"".join(_INT32.pack(t.oid) for t in types))


PARSE_COMPLETE = message(b"1")
BIND_COMPLETE = message(b"2")
CLOSE_COMPLETE = message(b"3")
NO_DATA = message(b"n")
EMPTY_QUERY = message(b"I")
PORTAL_SUSPENDED = message(b"s")


class Reader:
    """Fields of one message's payload, read in order."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.offset = 0

    def _take(self, size: int) -> bytes:
        end = self.offset + size
        if size < 0 or end > len(self.payload):
            raise ProtocolError("a message is shorter than its fields")
        chunk = self.payload[self.offset:end]
        self.offset = end
        return chunk

    def int16(self) -> int:
        value: int = _INT16.unpack(self._take(2))[0]
        return value

    def int32(self) -> int:
        value: int = _INT32.unpack(self._take(4))[0]
        return value

    def cstring(self) -> str:
        end = self.payload.find(b"\x00", self.offset)
        if end < 0:
            raise ProtocolError("a string of a message is not terminated")
        text = self.payload[self.offset:end].decode("utf-8", errors="replace")
        self.offset = end + 1
        return text

    def value(self) -> bytes | None:
        size = self.int32()
        return None if size == -1 else self._take(size)

    def byte(self) -> bytes:
        return self._take(1)
