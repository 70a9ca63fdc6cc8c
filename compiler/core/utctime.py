"""The one reader of times people write: on the command line (--now, gate ranges,
--since) and in files (gate ranges, campaign ranges). UTC unless an offset is given.

Accepted: a date (2026-11-20), a time with or without seconds, fractions and `Z`
(2026-11-20T06:00, 2026-11-20T06:00:00Z, 2026-11-20T06:00:00.5Z), an offset
(+01:00), a space for the `T` (how YAML writes a timestamp it read), the compact
2026-11-20T060000Z / 20261120T060000Z, and JSOC's 2010.05.01_00:00:00_UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

EXAMPLE = "use UTC like 2010-05-01, 2010-05-01T06:00 or 2010-05-01T06:00:00Z"

_ISO = re.compile(
    r"(\d{4})-?(\d{2})-?(\d{2})"
    r"(?:[T ](\d{2}):?(\d{2})(?::?(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|UTC|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)
_JSOC = re.compile(
    r"(\d{4})\.(\d{2})\.(\d{2})(?:_(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(?:_(UTC|TAI))?"
)


def parse_utc(text: str) -> datetime:
    """An aware datetime; ValueError (saying what is accepted) for anything else."""
    s = str(text).strip()
    m = _ISO.fullmatch(s) or _JSOC.fullmatch(s)
    if m is None or (m.re is _JSOC and (m.group(8) or "UTC").upper() != "UTC"):
        raise ValueError(f"cannot read time '{text}': {EXAMPLE}")
    y, mo, d, h, mi, sec, frac, zone = m.groups()
    try:
        t = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0),
                     int((frac or "0")[:6].ljust(6, "0")), tzinfo=_zone(zone))  # fmt: skip
    except ValueError as e:
        raise ValueError(f"cannot read time '{text}': {e}") from None
    return t.astimezone(UTC)


def _zone(z: str | None) -> timezone:
    if not z or z.upper() in ("Z", "UTC"):
        return UTC
    digits = z[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
    if delta >= timedelta(hours=24):
        raise ValueError(f"offset {z} is not under 24 hours")
    return timezone(-delta if z[0] == "-" else delta)
