"""The emulated CUCM's directory: which extensions exist, and how many agents may log in.

Extension sets are written the way administrators write dial-plan ranges (``1000-1999``,
``1000-1099,2000``).  They are stored as sorted ranges, not expanded into a set, so a
``100000-999999`` directory costs a few integers; membership is a binary search.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

__all__ = ["DEFAULT_EXTENSIONS", "Directory", "parse_extensions"]

DEFAULT_EXTENSIONS = "1000-1999"
MAX_DIGITS = 32
"""Longest extension accepted (E.164 numbers are at most 15 digits; leave room for prefixes)."""


def _number(text: str, spec: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > MAX_DIGITS:
        raise ValueError(f"extensions {spec!r}: {text!r} is not an extension number")
    return int(text)


def parse_extensions(spec: str) -> list[tuple[int, int, int]]:
    """``"1000-1099,2000"`` -> sorted, merged ``(first, last, width)`` ranges.

    ``width`` keeps leading zeros meaningful (``0100-0199`` are four-digit extensions).
    Raises ValueError naming the bad part.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError("extensions must name at least one extension (e.g. '1000-1999')")
    ranges: list[tuple[int, int, int]] = []
    for part in spec.split(","):
        if not part.strip():
            raise ValueError(f"extensions {spec!r}: empty item")
        low_text, sep, high_text = part.partition("-")
        low = _number(low_text, spec)
        high = _number(high_text, spec) if sep else low
        if high < low:
            raise ValueError(f"extensions {spec!r}: range {part.strip()!r} runs backwards")
        width = len(low_text.strip())
        if sep and len(high_text.strip()) != width:
            width = 0  # mixed widths: no zero padding implied
        ranges.append((low, high, width))
    ranges.sort()
    merged: list[tuple[int, int, int]] = []
    for low, high, width in ranges:
        if merged and low <= merged[-1][1] + 1 and width == merged[-1][2]:
            prev = merged[-1]
            merged[-1] = (prev[0], max(prev[1], high), width)
        else:
            merged.append((low, high, width))
    return merged


class Directory:
    """The set of extensions CUCM knows, plus the licence count that caps concurrent logins."""

    __slots__ = ("_lows", "_ranges", "licenses", "spec")

    def __init__(self, extensions: str = DEFAULT_EXTENSIONS, licenses: int | None = None) -> None:
        if licenses is not None and (isinstance(licenses, bool) or licenses < 0):
            raise ValueError(f"licenses must be a non-negative count or None, not {licenses!r}")
        self.spec = extensions
        self.licenses = licenses
        self._ranges = parse_extensions(extensions)
        self._lows = [low for low, _, _ in self._ranges]

    def __repr__(self) -> str:
        return f"Directory({self.spec!r}, licenses={self.licenses!r}, size={len(self)})"

    def __len__(self) -> int:
        return sum(high - low + 1 for low, high, _ in self._ranges)

    def __contains__(self, extension: object) -> bool:
        if not isinstance(extension, str) or not extension.isdigit() or not extension.isascii():
            return False
        if len(extension) > MAX_DIGITS:
            return False
        value = int(extension)
        index = bisect.bisect_right(self._lows, value) - 1
        if index < 0:
            return False
        _, high, width = self._ranges[index]
        if value > high:
            return False
        return width == 0 or len(extension) == max(width, len(str(value)))

    def __iter__(self) -> Iterator[str]:
        for low, high, width in self._ranges:
            for value in range(low, high + 1):
                yield str(value).zfill(width)

    def first(self, count: int) -> list[str]:
        """The first ``count`` extensions (for load generators and demos)."""
        out: list[str] = []
        for extension in self:
            if len(out) >= count:
                break
            out.append(extension)
        return out
