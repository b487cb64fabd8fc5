import codecs
from pathlib import Path

import pytest

from campaigner.customers.csvfile import open_csv, separator_of
from campaigner.errors import CampaignerError

MIB = 1 << 20  # the scan reads the file in chunks of this size


def lines_up_to(size: int, line: bytes) -> bytes:
    count = size // len(line)
    return line * count + b"x" * (size - count * len(line))


def test_line_numbers_across_chunk_boundaries(tmp_path: Path) -> None:
    line = b"id,12345678\r\n"  # 13 bytes
    head = lines_up_to(MIB - 1, line)  # ends with "x..." so a CRLF can straddle the boundary
    path = tmp_path / "big.csv"
    path.write_bytes(head + b"\r\n" + b"ok\r\n" + "€\r\n".encode() + b"bad \xff\r\n")
    failure = open_csv(path, "utf-8").failure
    assert failure is not None
    expected_line = head.count(b"\n") + 4  # the unfinished line, "ok", "€", then the bad one
    assert (failure.line, failure.byte) == (expected_line, 0xFF)
    assert failure.offset == len(head) + 2 + 4 + 5
    assert list(open_csv(path, "utf-8").lines())[-1] == "€\r\n"


def test_a_character_split_by_a_chunk_boundary_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "fa.csv"
    path.write_bytes(b"a" * (MIB - 1) + "س\n".encode())  # "س" is two bytes: one in each chunk
    assert open_csv(path, "utf-8").failure is None


def test_separators_and_old_mac_line_ends(tmp_path: Path) -> None:
    assert separator_of("id;first_name;phone\r\n") == ";"
    assert separator_of("id\tphone\n") == "\t"
    assert separator_of("id,name;x,y\n") == ","
    assert separator_of("phone\n") == ","
    path = tmp_path / "mac.csv"
    path.write_bytes(b"id;phone\r1;0912\r2;0935\r")  # Excel for Mac's "CSV (Macintosh)"
    rows = [cells for _, cells, _ in open_csv(path).rows()]
    assert rows == [["id", "phone"], ["1", "0912"], ["2", "0935"]]


def test_a_utf16_file_with_its_byte_order_mark_is_read_as_utf16(tmp_path: Path) -> None:
    """Excel's "Unicode Text": UTF-16 LE with a mark, tab-separated. Its mark read as
    Windows-1256 is Persian letters, and every cell came out with NULs in it."""
    path = tmp_path / "unicode.txt"
    path.write_bytes("شماره\tنام\r\n09121234567\tعلی\r\n".encode("utf-16"))
    rows = [cells for _, cells, _ in open_csv(path).rows()]
    assert rows == [["شماره", "نام"], ["09121234567", "علی"]]
    assert open_csv(path).encoding == "utf-16"
    big_endian = tmp_path / "be.csv"
    big_endian.write_bytes(codecs.BOM_UTF16_BE + "phone\n09121234567\n".encode("utf-16-be"))
    assert [cells for _, cells, _ in open_csv(big_endian).rows()] == [["phone"], ["09121234567"]]


def test_a_utf16_file_that_does_not_decode_is_refused_naming_its_encoding(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes("phone\n0912\n".encode("utf-16") + b"\x00\xd8")  # a lone surrogate
    with pytest.raises(CampaignerError, match="UTF-16 byte order mark"):
        open_csv(path)
