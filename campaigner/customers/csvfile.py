"""Reading a shop's CSV file: its encoding, its separator, and where it stops decoding.

Excel saves "CSV UTF-8" with a byte order mark, and plain "CSV" in the Windows code page of
the user's locale: Windows-1256 on Persian Windows, Windows-1252 with ";" as the separator on
German or French Windows. Without `--encoding` a file is read as UTF-8 (with or without the
mark) when every byte of it is valid UTF-8, as UTF-16 (or UTF-32) when it starts with that
byte order mark (Excel's "Unicode Text"), else as Windows-1256 when charset-normalizer
recognises Persian or Arabic text in that code page (or, for a file too small for it, when
that code page reads its non-ASCII bytes as Arabic-script letters); anything else is refused
with one line that names `--encoding`, since a wrong guess would silently garble every name.

The whole file is checked before anything is read into the database, so a file that stops
decoding half-way imports nothing (unless the caller keeps the part before the bad line).
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import charset_normalizer

from campaigner.errors import CampaignerError
from campaigner.files import Unreadable, check_regular_file

# The largest field read, in characters (Python's csv module stops at 128 KiB by default).
# Excel holds at most 32,767 characters in a cell; a longer field is rejected with its row.
MAX_FIELD_CHARS = 8 * 1024 * 1024
UTF8_BOM = codecs.BOM_UTF8
PERSIAN_CODE_PAGE = "cp1256"
SEPARATORS = (",", ";", "\t")
_CHUNK = 1 << 20
_SAMPLE_BYTES = 64 * 1024


@dataclass(frozen=True)
class DecodingFailure:
    """The first line that is not valid in the file's encoding."""

    line: int
    offset: int  # where that line starts, in bytes: everything before it decodes
    byte: int
    encoding: str

    def __str__(self) -> str:
        return f"line {self.line} is not valid {self.encoding} (byte 0x{self.byte:02X})"


@dataclass(frozen=True)
class CsvFile:
    path: Path
    encoding: str
    detected: bool
    failure: DecodingFailure | None

    def lines(self) -> Iterator[str]:
        """The text lines (line ends kept, as csv wants them), up to the first bad line."""
        limit = self.failure.offset if self.failure else None
        with self.path.open("rb") as raw:
            text = io.TextIOWrapper(
                io.BufferedReader(_Prefix(raw, limit)), encoding=self.encoding, newline=""
            )
            yield from text

    def rows(self) -> Iterator[tuple[int, list[str] | None, str | None]]:
        """(line, cells, None) per record, or (line, None, reason) for one csv cannot read."""
        lines = self.lines()
        first = next(lines, "")
        reader = csv.reader(_chain(first, lines), delimiter=separator_of(first))
        csv.field_size_limit(MAX_FIELD_CHARS)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                reason = str(exc)
                if "field limit" in reason:
                    reason = f"a field is longer than {MAX_FIELD_CHARS:,} characters"
                yield reader.line_num, None, f"unreadable row: {reason}"
                continue
            yield reader.line_num, cells, None


def open_csv(path: Path, encoding: str | None = None) -> CsvFile:
    """The file with its encoding: `encoding`, or detected (see the module docstring)."""
    if not path.exists():
        raise CampaignerError(f"{path}: file not found")
    try:
        check_regular_file(path, "a CSV file")  # a FIFO or /dev/zero would never end
    except Unreadable as exc:
        raise CampaignerError(f"{path}: {exc}") from None
    if encoding is not None:
        chosen = _known(encoding)
        return CsvFile(path, chosen, False, _scan(path, chosen)[0])
    with path.open("rb") as handle:
        head = handle.read(len(codecs.BOM_UTF32))
    bom = head.startswith(UTF8_BOM)
    wide = _wide_encoding(head)
    if wide is not None:
        return _wide(path, wide)
    failure, sample = _scan(path, "utf-8-sig")
    if bom or failure is None:
        return CsvFile(path, "utf-8-sig", True, failure)
    guess = charset_normalizer.from_bytes(sample).best()
    if (guess is not None and guess.encoding == PERSIAN_CODE_PAGE) or _persian_letters(sample):
        return CsvFile(path, PERSIAN_CODE_PAGE, True, _scan(path, PERSIAN_CODE_PAGE)[0])
    looks = f", it looks like {guess.encoding}" if guess is not None else ""
    raise CampaignerError(
        f"{path}: line {failure.line} is not UTF-8 (byte 0x{failure.byte:02X}) and the file is "
        f"not Persian Windows-1256{looks}; give its encoding with --encoding, e.g. cp1252"
    )


def _wide_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 when the file starts with its byte order mark: Excel's "Unicode
    Text" and Notepad's "Unicode" are UTF-16. Read as Windows-1256, the marks FF FE / FE FF
    are the letter "ے" and a right-to-left mark, which looked like a Persian file: every
    digit then came out with a NUL beside it, an opt-out list added nobody and said so only
    as "lines without a number"."""
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _wide(path: Path, encoding: str) -> CsvFile:
    """A UTF-16/32 file, read whole or refused: the scan's line offsets count bytes as
    UTF-8 does, so a partial read of a wide file could end inside a character."""
    failure = _scan(path, encoding)[0]
    if failure is not None:
        raise CampaignerError(
            f"{path}: starts with a {encoding.upper()} byte order mark but {failure}; save it "
            'as "CSV UTF-8" or give its encoding with --encoding'
        )
    return CsvFile(path, encoding, True, None)


def _persian_letters(sample: bytes) -> bool:
    """Whether the non-ASCII text, read as Windows-1256, is Persian or Arabic letters.

    charset-normalizer needs some text to be sure: a small shop's first export of a few
    short names (علي, مريم) it takes for Japanese. Read in Windows-1256, such bytes are
    Arabic-script letters; a Latin-1 or Windows-1252 file's accented letters (é, ü) are not.
    """
    text = sample.decode(PERSIAN_CODE_PAGE, errors="replace")
    foreign = [char for char in text if not char.isascii() and not char.isspace()]
    letters = [char for char in foreign if "\u0600" <= char <= "\u06ff" or char in "\u200c\u200f"]
    return bool(foreign) and len(letters) >= 0.9 * len(foreign)


def separator_of(header: str) -> str:
    """The separator of a file, from its header line: the most frequent of , ; and tab."""
    return max(SEPARATORS, key=lambda separator: (header.count(separator), separator == ","))


def _known(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise CampaignerError(
            f"--encoding {encoding!r}: unknown encoding (e.g. utf-8, cp1256, cp1252)"
        ) from None
    return "utf-8-sig" if name == "utf-8" else name  # a byte order mark is never data


def _scan(path: Path, encoding: str) -> tuple[DecodingFailure | None, bytes]:
    """The first line that does not decode, and lines with non-ASCII bytes as a sample for
    the detector. Reads in large chunks: a million-row file takes a fraction of a second."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, consumed, line_start, ended_in_cr = 1, 0, 0, False
    sample = bytearray()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            if ended_in_cr and chunk.startswith(b"\n"):
                line -= 1  # a CRLF split between two chunks is one line break
            if not chunk.isascii() and len(sample) < _SAMPLE_BYTES:
                sample += b"\n".join(part for part in chunk.splitlines() if not part.isascii())
                del sample[_SAMPLE_BYTES:]
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                data = exc.object
                start = consumed - (len(data) - len(chunk))  # undecoded bytes carried over
                before = data[: exc.start]
                breaks = _line_breaks(before)
                if breaks:
                    line_start = start + max(before.rfind(b"\n"), before.rfind(b"\r")) + 1
                failure = DecodingFailure(line + breaks, line_start, data[exc.start], encoding)
                return failure, bytes(sample)
            breaks = _line_breaks(chunk)
            if breaks:
                line_start = consumed + max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
            line += breaks
            consumed += len(chunk)
            ended_in_cr = chunk.endswith(b"\r")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return DecodingFailure(line, line_start, exc.object[exc.start], encoding), bytes(sample)
    return None, bytes(sample)


def _line_breaks(data: bytes) -> int:
    return data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    if first:
        yield first
    yield from rest


class _Prefix(io.RawIOBase):
    """The first `limit` bytes of a binary file (all of it when `limit` is None)."""

    def __init__(self, raw: BinaryIO, limit: int | None) -> None:
        self._raw = raw
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        size = len(buffer) if self._left is None else min(len(buffer), self._left)
        data = self._raw.read(size)
        buffer[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)
