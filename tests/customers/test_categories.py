"""Category names survive storage whole, whatever separators they hold."""

from __future__ import annotations

import pytest

from campaigner.customers.categories import names, split_text, store


@pytest.mark.parametrize(
    "name",
    ["tea, coffee & co", "gifts | sale", "nuts; dried fruit", "50% off", "a%2cb", "چای، دمنوش"],
)
def test_a_name_reads_back_as_itself(name: str) -> None:
    assert names(store([name, "summer"])) == tuple(sorted([name, "summer"]))


def test_stored_text_is_trimmed_lower_case_sorted_and_each_once() -> None:
    assert store(["  Summer   Shoes ", "Tea", "tea", ""]) == ",summer shoes,tea,"
    assert store([]) == "" and names("") == ()


def test_text_written_as_a_list_is_split() -> None:
    # Where categories come as one text (a hand-made record), `,` `;` `|` separate them.
    assert names(store(split_text("Shoes; Summer | Sale,Tea"))) == (
        "sale",
        "shoes",
        "summer",
        "tea",
    )


def test_an_escaped_comma_is_part_of_a_name() -> None:
    """Regression: «Tea\\, Coffee & Co» was stored as `tea\\` and `coffee & co`.

    The cell as WooCommerce's CSV export writes a product's categories: `implode_values` in
    woocommerce/woocommerce plugins/woocommerce/includes/export/abstract-wc-csv-exporter.php
    escapes a comma in a term name as `\\,` and joins the names with `, `."""
    cell = "Tea\\, Coffee & Co, Clothing > Hoodies, چای، دمنوش"
    assert names(store(split_text(cell))) == (
        "clothing > hoodies",
        "tea, coffee & co",
        "چای، دمنوش",
    )
