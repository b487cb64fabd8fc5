"""CSV files as shops really save them: Excel's encodings and separators, huge fields, files
that stop decoding half-way, and cells that must come back as text, never formulas.

What Excel writes (sources, checked with the `search` tool):
- "CSV UTF-8 (Comma delimited)": UTF-8 with a byte order mark; plain "Comma Separated Values"
  uses the Windows code page of the user's locale (donatstudios.com, "CSV: An Encoding
  Nightmare"; SAP wiki "Excel files - CSV format": without a BOM a text file is read in the PC's
  locale encoding). On Persian Windows that is Windows-1256, which has no Persian yeh (ی),
  so names carry the Arabic yeh (ي) instead (blog.afsharm.ir, notes on code page 1256).
- The separator is the locale's list separator: ";" where the decimal mark is a comma,
  e.g. German or French Windows, whose code page is Windows-1252 (List separator, Microsoft
  Excel).
- Excel writes CRLF line ends.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.config import CustomerDefaults
from campaigner.customers.csvfile import MAX_FIELD_CHARS
from campaigner.customers.importer import BATCH_SIZE, ImportReport, import_csv
from campaigner.db.models import Customer
from campaigner.errors import CampaignerError

DEFAULTS = CustomerDefaults()
PERSIAN_1256 = [
    ("علي", "رضايي", "تهران"),
    ("محمد حسين", "کاظمي", "شيراز"),
    ("مريم", "احمدي", "مشهد"),
]
LATIN_1252 = [
    ("José", "Müller", "Köln"),
    ("Zoë", "Groß", "Düsseldorf"),
    ("François", "Lefèvre", "Genève"),
]
# More ASCII rows than one batch first: the old importer committed them before failing.
ASCII_ROWS = BATCH_SIZE + 500


def excel_file(path: Path, rows: list[str], encoding: str, bom: bool = False) -> Path:
    data = "\r\n".join(rows) + "\r\n"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode(encoding))
    return path


def persian_rows(separator: str = ",") -> list[str]:
    header = separator.join(["id", "first_name", "last_name", "phone", "city"])
    ascii_rows = [
        separator.join([f"a{n}", "Ali", "Rezaei", f"0912{n:07d}", "Tehran"])
        for n in range(ASCII_ROWS)
    ]
    persian = [
        separator.join([f"p{n}", first, last, f"0935{n:07d}", city])
        for n, (first, last, city) in enumerate(PERSIAN_1256)
    ]
    return [header, *ascii_rows, *persian]


def latin_rows(separator: str) -> list[str]:
    rows = persian_rows(separator)[: ASCII_ROWS + 1]
    rows += [
        separator.join([f"l{n}", first, last, f"+49151234567{n:02d}", city])
        for n, (first, last, city) in enumerate(LATIN_1252)
    ]
    return rows


def customers(sessions: sessionmaker[Session]) -> dict[str, Customer]:
    with sessions() as session:
        return {c.external_id: c for c in session.scalars(select(Customer))}


def only_reject(report: ImportReport) -> list[str]:
    """The one row of the reject file: line, reason, then the file's own cells."""
    assert report.reject_file is not None
    (row,) = list(csv.reader(report.reject_file.open(encoding="utf-8")))[1:]
    return row


def count(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Customer)) or 0)


def test_windows_1256_file_from_persian_excel_is_detected(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = excel_file(tmp_path / "customers.csv", persian_rows(), "cp1256")
    report = import_csv(sessions, "customers", path, DEFAULTS)
    assert (report.inserted, report.rejected) == (ASCII_ROWS + 3, 0)
    found = customers(sessions)
    assert (found["p1"].first_name, found["p1"].last_name, found["p1"].city) == PERSIAN_1256[1]


def test_a_small_windows_1256_file_is_detected_too(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    """Regression: two short names were too little for charset-normalizer, which took them
    for cp932 (Japanese) and refused the file."""
    rows = ["external_id,first_name,phone", "P1,علي,09121110013", "P2,مريم,09121110014"]
    path = excel_file(tmp_path / "customers.csv", rows, "cp1256")
    report = import_csv(sessions, "customers", path, DEFAULTS)
    assert (report.inserted, report.rejected) == (2, 0)
    assert {c.first_name for c in customers(sessions).values()} == {"علي", "مريم"}


def test_a_small_latin_file_is_not_taken_for_persian(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = excel_file(tmp_path / "kunden.csv", ["id,first_name", "L1,José"], "latin-1")
    with pytest.raises(CampaignerError, match="--encoding"):
        import_csv(sessions, "customers", path, DEFAULTS)
    assert count(sessions) == 0


# US/UK Excel: Windows-1252 and ","; German or French Excel: Windows-1252 and ";".
@pytest.mark.parametrize("separator", [",", ";"])
def test_latin_file_names_the_encoding_option_and_commits_nothing(
    tmp_path: Path, sessions: sessionmaker[Session], separator: str
) -> None:
    path = excel_file(tmp_path / "kunden.csv", latin_rows(separator), "cp1252")
    with pytest.raises(CampaignerError) as error:
        import_csv(sessions, "customers", path, DEFAULTS)
    message = str(error.value)
    assert "\n" not in message and "--encoding" in message
    assert f"line {ASCII_ROWS + 2}" in message  # the first row with a non-UTF-8 byte
    assert count(sessions) == 0


def test_a_one_megabyte_name_is_shortened_and_its_row_kept(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    rows = [
        "id,first_name,phone,city",
        "c1,Sara,09121234567,",
        f"c2,{'x' * 1_000_000},09121234568,",
    ]
    rows += ["c3,Reza,09121234569,", f"c4,Ali,09121234560,{'شیراز ' * 30}"]
    path = excel_file(tmp_path / "big.csv", rows, "utf-8")
    report = import_csv(sessions, "customers", path, DEFAULTS)
    assert (report.inserted, report.rejected, report.reject_file) == (4, 0, None)
    assert report.summary() == (
        "4 rows: 4 new, 0 updated, 0 unchanged, 0 rejected; warning: 2 value(s) too long, "
        "shortened (line 3: first_name of 1,000,000 characters cut to 128; "
        "line 5: city of 179 characters cut to 128)"
    )
    with sessions() as session:
        names = dict(session.execute(select(Customer.external_id, Customer.first_name)).all())
        city = session.scalar(select(Customer.city).where(Customer.external_id == "c4"))
    assert names["c2"] == "x" * 128
    assert city == " ".join(["شیراز"] * 30)[:128]


def test_rejects_file_cells_are_never_formulas(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    rows = [
        "id,first_name,last_name,phone",
        '@SUM(1),"=HYPERLINK(""https://evil.example"",""x"")",+cmd,0912',
        "c2,Sara,-2+3,not a phone",
    ]
    path = excel_file(tmp_path / "people.csv", rows, "utf-8")
    report = import_csv(sessions, "customers", path, DEFAULTS)
    assert report.rejected == 2 and report.reject_file is not None
    rejects = list(csv.reader(report.reject_file.open(encoding="utf-8")))
    assert rejects[1][2:] == [
        "'@SUM(1)",
        '\'=HYPERLINK("https://evil.example","x")',
        "'+cmd",
        "0912",
    ]
    assert rejects[2][2:] == ["c2", "Sara", "'-2+3", "not a phone"]


def test_numeric_paid_at_is_unix_time_by_range(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    excel_file(tmp_path / "c.csv", ["id,phone", "c1,09121234567"], "utf-8")
    import_csv(sessions, "customers", tmp_path / "c.csv", DEFAULTS)
    rows = ["id,customer_id,total,paid_at", "o1,c1,10,1772359200", "o2,c1,10,1772359200000"]
    rows += ["o3,c1,10,99999999999"]
    report = import_csv(sessions, "orders", excel_file(tmp_path / "o.csv", rows, "utf-8"), DEFAULTS)
    assert (report.inserted, report.rejected) == (2, 1)
    rejected = only_reject(report)
    assert rejected[0] == "4" and "seconds or milliseconds" in rejected[1]


def test_latin_file_with_its_encoding_given(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = excel_file(tmp_path / "kunden.csv", latin_rows(";"), "cp1252")
    report = import_csv(sessions, "customers", path, DEFAULTS, encoding="windows-1252")
    assert (report.inserted, report.rejected, report.encoding) == (ASCII_ROWS + 3, 0, "cp1252")
    found = customers(sessions)
    assert (found["l2"].first_name, found["l2"].last_name, found["l2"].city) == LATIN_1252[2]


def test_csv_utf8_from_excel_with_its_byte_order_mark(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    rows = ["id,first_name,city", "c1,سارا,تهران", "c2,Zoë,Köln"]
    path = excel_file(tmp_path / "utf8.csv", rows, "utf-8", bom=True)
    for encoding in (None, "utf-8"):
        report = import_csv(sessions, "customers", path, DEFAULTS, encoding=encoding)
        assert report.rejected == 0
    assert customers(sessions)["c1"].first_name == "سارا"


def test_a_file_that_stops_decoding_imports_nothing_unless_kept_in_part(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    rows = persian_rows()[: ASCII_ROWS + 1]
    path = excel_file(tmp_path / "broken.csv", rows, "utf-8")
    with path.open("ab") as handle:  # a line cut by a bad copy: a lone continuation byte
        handle.write(b"x1,\x80Ali,09121111111\r\nx2,Reza,09121111112\r\n")
    with pytest.raises(CampaignerError, match=f"line {ASCII_ROWS + 2} is not valid utf-8"):
        import_csv(sessions, "customers", path, DEFAULTS, encoding="utf-8")
    assert count(sessions) == 0
    report = import_csv(sessions, "customers", path, DEFAULTS, encoding="utf-8", keep_partial=True)
    assert (report.inserted, report.rejected) == (ASCII_ROWS, 0)
    assert report.stopped is not None and f"line {ASCII_ROWS + 2}" in report.stopped
    assert f"line {ASCII_ROWS + 2}" in report.summary()


def test_a_field_over_the_limit_rejects_its_row_with_its_line(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    huge = "x" * (MAX_FIELD_CHARS + 1)
    rows = ["id,notes,phone", "c1,,09121234567", f"c2,{huge},09121234568", "c3,,09121234569"]
    report = import_csv(
        sessions, "customers", excel_file(tmp_path / "h.csv", rows, "utf-8"), DEFAULTS
    )
    assert (report.inserted, report.rejected) == (2, 1)
    rejected = only_reject(report)
    assert rejected[0] == "3" and f"longer than {MAX_FIELD_CHARS:,} characters" in rejected[1]


@pytest.mark.parametrize("kind", ["customers", "orders", "items"])
@pytest.mark.parametrize(
    "data",
    [b"", b"\xef\xbb\xbf", b"\r\n\r\n", b" , \r\n"],
    ids=["no-bytes", "byte-order-mark-only", "blank-lines", "blank-cells"],
)
def test_an_empty_file_is_said_to_be_empty_naming_it(
    tmp_path: Path, sessions: sessionmaker[Session], kind: str, data: bytes
) -> None:
    """Regression: an empty file (Excel saves one with only its byte order mark) was refused
    with "no id column (expected 'external_id' or 'id', ...)", sending the user to look for
    a column in a file that has nothing."""
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    with pytest.raises(CampaignerError) as error:
        import_csv(sessions, kind, path, DEFAULTS)
    assert str(error.value).startswith(f"{path}: the file is empty")
    assert "column" not in str(error.value).split(";")[0]
    assert not (tmp_path / "export.rejects.csv").exists()


def test_a_blank_first_line_is_said_to_be_where_the_header_belongs(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    path = excel_file(tmp_path / "c.csv", ["", "id,phone", "c1,09121234567"], "utf-8")
    with pytest.raises(CampaignerError) as error:
        import_csv(sessions, "customers", path, DEFAULTS)
    assert str(error.value).startswith(
        f"{path}: line 1 is blank: the header must be the first line"
    )
    assert count(sessions) == 0


def test_an_unknown_encoding_is_one_line(tmp_path: Path, sessions: sessionmaker[Session]) -> None:
    path = excel_file(tmp_path / "c.csv", ["id", "c1"], "utf-8")
    with pytest.raises(CampaignerError, match="--encoding 'klingon': unknown encoding"):
        import_csv(sessions, "customers", path, DEFAULTS, encoding="klingon")


def test_import_command_says_what_it_read_and_where_it_stopped(tmp_path: Path, db_url: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, ["--config", str(config), "customers", "import", *args])

    latin = str(excel_file(tmp_path / "kunden.csv", latin_rows(";"), "cp1252"))
    refused = run(latin)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    (line,) = refused.output.splitlines()
    assert line.startswith("Error: ") and "--encoding" in line
    assert run(latin, "--encoding", "cp1252").exit_code == 0
    assert "unknown encoding" in run(latin, "--encoding", "nope").output

    persian = str(excel_file(tmp_path / "fa.csv", persian_rows(), "cp1256"))
    detected = run(persian)
    assert detected.exit_code == 0 and "read as cp1256 (detected" in detected.output

    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"id,phone\nb1,09121111111\nb2,\xff09121111112\n")
    partial = run(str(broken), "--encoding", "utf-8", "--keep-partial")
    assert partial.exit_code == 1 and "stopped at line 3" in partial.output


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
@pytest.mark.parametrize(
    "command", [["customers", "import"], ["orders", "import"], ["optout", "import"]]
)
def test_a_file_that_never_ends_is_refused_at_once(
    tmp_path: Path, kind: str, command: list[str]
) -> None:
    """Regression: `customers import` of a FIFO waited for a writer forever, and of
    /dev/zero read without end. Run in a process of its own, so a hang fails the test."""
    config = tmp_path / "shop" / "config.toml"
    assert CliRunner().invoke(cli, ["init", str(config.parent)]).exit_code == 0
    path = tmp_path / "customers.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    result = subprocess.run(
        [sys.executable, "-m", "campaigner", "--config", str(config), *command, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    what = "a FIFO" if kind == "fifo" else "a device"
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {path}: not a regular file ({what}): a CSV file must be a plain file"
    )
