import pytest

from campaigner.customers.phones import InvalidPhone, national_format, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "09121234567",
        "+989121234567",
        "00989121234567",
        "989121234567",
        "9121234567",
        "۰۹۱۲۱۲۳۴۵۶۷",
        "٠٩١٢١٢٣٤٥٦٧",
        " 0912 123 4567 ",
        "0912-123-4567",
        # Typed on a Persian keyboard or pasted from a right-to-left page: half-spaces
        # (ZWNJ), direction marks and embeddings sit between the digits, unseen.
        "۰۹۱۲\u200c۱۲۳\u200c۴۵۶۷",
        "\u200f0912\u200e123\u200d4567\ufeff",
        "\u202b۰۹۱۲ ۱۲۳ ۴۵۶۷\u202c",
        "0912\u00a0123\u00a04567",
    ],
)
def test_iranian_formats_normalise(raw: str) -> None:
    assert normalize_phone(raw, "IR") == "+989121234567"


def test_other_region() -> None:
    assert normalize_phone("(416) 234-5678", "CA") == "+14162345678"
    assert normalize_phone("+1 416 234 5678", "IR") == "+14162345678"


@pytest.mark.parametrize("raw", ["", "12", "0912", "hello", "+98912123456789"])
def test_invalid(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalize_phone(raw, "IR")


def test_national_format() -> None:
    assert national_format("+989121234567") == "09121234567"
    assert national_format("+14162345678") == "+14162345678"
