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
