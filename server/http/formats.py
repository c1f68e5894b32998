"""The formats an answer can be sent in, and which one a request asks for.

A request names its format with a ``format`` parameter (``?format=csv``, or ``"format"`` in a
``/v1/query`` body) or with the ``Accept`` header; the parameter wins. JSON is the default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from semantic.errors import FieldError
from semantic.suggest import did_you_mean, shown
from server.http.responses import JSON


@dataclass(frozen=True, slots=True)
class Format:
    """One answer format: its ``format`` name, ClickHouse's name for it (None: our JSON),
    the media types that ask for it (the first is the one answered), the file extension of
    a download."""

    name: str
    clickhouse: str | None
    media_types: tuple[str, ...]
    extension: str

    @property
    def media_type(self) -> str:
        return self.media_types[0]

    @property
    def binary(self) -> bool:
        return self.name in ("parquet", "arrow")


JSON_FORMAT = Format("json", None, (JSON,), "json")
# CSV is streamed in ClickHouse's headerless CSV with the header line written by us: the
# embedded engine emits each block as a complete document, so CSVWithNames would repeat it.
CSV_FORMAT = Format("csv", "CSV", ("text/csv",), "csv")
FORMATS: dict[str, Format] = {f.name: f for f in (
    JSON_FORMAT,
    CSV_FORMAT,
    Format("parquet", "Parquet", ("application/vnd.apache.parquet", "application/x-parquet"),
           "parquet"),
    Format("arrow", "ArrowStream", ("application/vnd.apache.arrow.stream",), "arrows"),
)}
#: media type -> format
_BY_MEDIA_TYPE = {media: f for f in FORMATS.values() for media in f.media_types}
#: what ``*/*`` and the bare ranges ``text/*``, ``application/*`` prefer
_PREFERRED = (JSON_FORMAT, CSV_FORMAT)


class NotAcceptable(FieldError):
    """The ``Accept`` header admits none of the formats answers are sent in."""

    code = "not_acceptable"
    status = 406


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def _ranges(accept: str) -> list[tuple[str, float]]:
    """``Accept`` as (media range, quality) pairs, in the header's order."""
    ranges = []
    for item in accept.split(","):
        media, *parameters = item.split(";")
        media = media.strip().lower()
        if media:
            ranges.append((media, _quality(parameters)))
    return ranges


def _accepted(media_range: str) -> list[Format]:
    if media_range == "*/*":
        return [JSON_FORMAT]
    if media_range.endswith("/*"):
        kind = media_range[:-1]
        return [f for f in (*_PREFERRED, *FORMATS.values()) if f.media_type.startswith(kind)][:1]
    found = _BY_MEDIA_TYPE.get(media_range)
    return [found] if found is not None else []


def accepted_format(accept: str | None) -> Format:
    """The format an ``Accept`` header prefers: the highest quality among the ranges we can
    answer (the first listed on a tie); JSON without the header or for ``*/*``.

    >>> accepted_format("text/html, text/csv;q=0.9, */*;q=0.1").name
    'csv'
    >>> accepted_format("application/x-parquet").name, accepted_format(None).name
    ('parquet', 'json')
    """
    if accept is None or not accept.strip():
        return JSON_FORMAT
    best: tuple[float, Format] | None = None
    for media_range, quality in _ranges(accept):
        for found in _accepted(media_range):
            if quality > 0 and (best is None or quality > best[0]):
                best = (quality, found)
    if best is None:
        offered = ", ".join(m for f in FORMATS.values() for m in f.media_types)
        raise NotAcceptable("Accept", f"no answer format matches Accept: "
                            f"'{shown(accept, 200)}'; this route answers {offered} (or use "
                            f"the 'format' parameter: {', '.join(FORMATS)})")
    return best[1]


def named_format(name: str, field: str = "format") -> Format:
    """The format a ``format`` parameter names (any case)."""
    found = FORMATS.get(name.strip().lower()) if isinstance(name, str) else None
    if found is None:
        raise FieldError(field, f"unknown format '{shown(str(name))}'"
                         f"{did_you_mean(str(name), list(FORMATS))}; use one of "
                         f"{', '.join(FORMATS)}")
    return found


def requested_format(accept: str | None, *named: str | None) -> Format:
    """The format a request asks for: its ``format`` parameters (which must agree), else its
    ``Accept`` header."""
    given = {named_format(name) for name in named if name is not None}
    if len(given) > 1:
        raise FieldError("format", "the format is given twice, differently (query parameter "
                         "and body); give it once")
    if given:
        return given.pop()
    return accepted_format(accept)


def download_name(stem: str, answer_format: Format) -> str:
    """A ``Content-Disposition`` value naming the download (``by-region.parquet``).

    >>> download_name("/api/by-region", FORMATS["parquet"])
    'attachment; filename="api-by-region.parquet"'
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.") or "answer"
    return f'attachment; filename="{safe}.{answer_format.extension}"'
