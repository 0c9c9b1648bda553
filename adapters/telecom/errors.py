"""The one error the D.0 codec raises: it names the byte offset, the segment (111-AM) and the field.

Bad input never escapes as an IndexError or a bare ValueError; callers (ingest, the CLI) show ``str(err)``
and keep ``offset``, ``segment`` and ``field`` for a dead-letter record.
"""

from __future__ import annotations


class TelecomError(ValueError):
    """A D.0 transmission (or a value meant for one) that the codec cannot read or write."""

    def __init__(self, message: str, offset: int | None = None, segment: str | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.offset = offset
        self.segment = segment
        self.field = field
        where = []
        if offset is not None:
            where.append(f"byte {offset}")
        if segment is not None:
            where.append(f"segment AM{segment}")
        if field is not None:
            where.append(f"field {field}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
