"""Gate axes: time (UTC seconds), serial numbers, Carrington rotations.

Values are plain numbers inside: seconds since 1970-01-01T00:00:00Z for time, the
number itself for serial and Carrington axes. Parsing and formatting live here so
the compiler, the Snakefile helpers and the gate commands agree to the character.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime

from compiler.core.diagnostics import Loc, fail
from compiler.core.limits import MAX_DURATION_S
from compiler.core.utctime import parse_utc

AXES = ("time", "serial", "carrington")
_DUR = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_DURATION = re.compile(r"(\s*\d+(?:\.\d+)?\s*[dhms])+\s*", re.IGNORECASE)

# Serial and Carrington values beyond this lose whole-number precision as floats, so
# chunk edges would blur; no real series comes near it.
AXIS_LIMIT = 10**15
_DUR_S = {"d": 86400, "h": 3600, "m": 60, "s": 1}

# Carrington rotation n starts at Julian day JD0 + PERIOD * n (the usual linear
# approximation, good to a few hours; the synodic rotation period in days).
CARRINGTON_JD0 = 2398140.227
CARRINGTON_PERIOD = 27.2752316
_UNIX_JD = 2440587.5

# The first and last second a time can be written in (years 1 to 9999): a chunk of a
# grid whose origin is not midnight can start before year 1 or end after 9999, so
# chunk edges are kept inside (chunks.edge).
TIME_MIN = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
TIME_MAX = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


def parse_time(text: str, loc: Loc) -> int:
    """Seconds since 1970, from any form core/utctime reads (one reader for all)."""
    try:
        return int(parse_utc(str(text)).timestamp())
    except ValueError as e:
        raise fail(loc, str(e)) from None


def format_time(sec: float) -> str:
    # The year padded by hand: strftime writes year 1 as '1', which no format reads back.
    dt = datetime.fromtimestamp(sec, UTC)
    return f"{dt.year:04d}" + dt.strftime("-%m-%dT%H:%M:%SZ")


def time_tag(sec: float) -> str:
    dt = datetime.fromtimestamp(sec, UTC)
    return f"{dt.year:04d}" + dt.strftime("%m%dT%H%M%SZ")


def parse_duration_s(value, loc: Loc, signed: bool = False) -> int:
    """Seconds, from 600 or '10m', '6h', '1d12h': never negative unless `signed` (an
    offset: '-1d', '+45m'), and at most MAX_DURATION_S either way."""
    if isinstance(value, bool):
        raise fail(loc, f"cannot read duration '{value}'")
    if isinstance(value, (int, float)):
        sec = float(value)
    else:
        s = str(value).strip()
        sign = 1
        if signed and s[:1] in ("-", "+"):
            sign, s = (-1 if s[0] == "-" else 1), s[1:].strip()
        if _DURATION.fullmatch(s):
            sec = sign * sum(float(n) * _DUR_S[u.lower()] for n, u in _DUR.findall(s))
        elif re.fullmatch(r"-?\d+", s):
            sec = sign * float(s)
        else:
            example = "'-1d', '10m', '6h'" if signed else "'10m', '6h', '1d'"
            raise fail(loc, f"cannot read duration '{value}': use e.g. {example}")
    if not math.isfinite(sec):
        raise fail(loc, f"duration '{value}' is not a finite number")
    if sec < 0 and not signed:
        raise fail(loc, f"duration '{value}' must not be negative")
    if abs(sec) > MAX_DURATION_S:
        raise fail(loc, f"duration '{value}' is more than the limit of {MAX_DURATION_S // 86400}d")
    return int(sec)


def parse_value(axis: str, value, loc: Loc) -> float:
    """A point on the axis, from YAML or the command line."""
    if axis == "time":
        return parse_time(value, loc)
    if isinstance(value, bool):
        raise fail(loc, f"cannot read {axis} value '{value}'")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise fail(loc, f"cannot read {axis} value '{value}': expected a number") from None
    if not math.isfinite(v):
        raise fail(loc, f"{axis} value '{value}' is not finite")
    if abs(v) > AXIS_LIMIT:
        raise fail(loc, f"{axis} value '{value}' is out of range: at most 1e15 either side of 0")
    return int(v) if v == int(v) else v


def parse_length(axis: str, value, loc: Loc, signed: bool = False) -> float:
    """A length on the axis: a duration for time, a number otherwise."""
    if axis == "time":
        return parse_duration_s(value, loc, signed)
    return parse_value(axis, value, loc)


def fmt_value(axis: str, v: float) -> str:
    """How a point is shown to commands and people."""
    if axis == "time":
        return format_time(v)
    return str(int(v)) if v == int(v) else repr(v)


def tag(axis: str, v: float) -> str:
    """How a point is spelled in file names (no ':')."""
    if axis == "time":
        return time_tag(v)
    return str(int(v)) if v == int(v) else repr(v)


def untag(axis: str, text: str) -> float:
    if axis == "time":
        sec = canonical_time_tag(text)
        if sec is not None:
            return sec
        return int(datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp())
    v = float(text)
    return int(v) if v == int(v) else v


_EPOCH_DAY = date(1970, 1, 1).toordinal()


def canonical_time_tag(text: str) -> int | None:
    """The seconds of a tag exactly as `time_tag` spells it (YYYYmmddTHHMMSSZ), else
    None. A gate's markers are parsed by the hundred thousand: strptime and strftime
    cost 30 us a name; this costs 1."""
    digits = text[:8] + text[9:15]
    if len(text) != 16 or text[8] != "T" or text[15] != "Z" or not digits.isascii():
        return None
    if not digits.isdigit():
        return None
    h, m, sec = int(text[9:11]), int(text[11:13]), int(text[13:15])
    if h > 23 or m > 59 or sec > 59:
        return None
    try:  # a day that does not exist (or year 0) raises
        day = date(int(text[:4]), int(text[4:6]), int(text[6:8])).toordinal()
    except ValueError:
        return None
    return (day - _EPOCH_DAY) * 86400 + h * 3600 + m * 60 + sec


def carrington_to_time(cr: float) -> float:
    jd = CARRINGTON_JD0 + CARRINGTON_PERIOD * cr
    return (jd - _UNIX_JD) * 86400.0


def time_to_carrington(sec: float) -> float:
    jd = sec / 86400.0 + _UNIX_JD
    return (jd - CARRINGTON_JD0) / CARRINGTON_PERIOD


def convert(value: float, src: str, dst: str) -> float:
    if src == dst:
        return value
    if (src, dst) == ("carrington", "time"):
        return carrington_to_time(value)
    if (src, dst) == ("time", "carrington"):
        return time_to_carrington(value)
    raise ValueError(f"cannot convert {src} to {dst}")


def convertible(src: str, dst: str) -> bool:
    return src == dst or {src, dst} == {"time", "carrington"}
