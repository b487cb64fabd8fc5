"""Line items from CSV (`orders import --items`): keyed by order id, through the loader,
idempotent, categories with commas, bad lines never leave an order half-written."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from product_shop import ProductShop, day
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from campaigner.cli import cli
from campaigner.config import Settings
from campaigner.customers.importer import import_csv
from campaigner.customers.loader import load_items
from campaigner.db.models import Order, OrderItem, OrderItemCategory

CUSTOMERS = "id,first_name,phone\nc1,Ali,09121111111\nc2,Sara,09122222222\n"
ORDERS = (
    "id,customer_id,total,status,paid_at\n"
    "1001,c1,500000,paid,2026-01-01T10:00:00+03:30\n"
    "1002,c2,90000,paid,2026-01-02T10:00:00+03:30\n"
)
# Persian headers as a shop's Excel file has them; a category holding a comma, two in a cell.
ITEMS = (
    "شماره سفارش,کد کالا,نام کالا,دسته‌بندی,تعداد,قیمت\n"
    '1001,TEA-57,چای ماسالا,"چای، دمنوش|Drinks, hot",2,200000\n'
    "1001,POT-90,قوری,ظروف,1,100000\n"
    "1002,TEA-57,چای ماسالا,چای، دمنوش,1,90000\n"
)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def stored(sessions: sessionmaker[Session]) -> list[tuple[str, int, str | None, str, int, str]]:
    with sessions() as session:
        rows = session.execute(
            select(
                Order.external_id,
                OrderItem.line_no,
                OrderItem.sku,
                OrderItem.name,
                OrderItem.quantity,
                OrderItem.line_total,
            )
            .join(Order, Order.id == OrderItem.order_id)
            .order_by(Order.external_id, OrderItem.line_no)
        )
        return [(o, n, sku, name, q, str(total)) for o, n, sku, name, q, total in rows]


def categories(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        rows = session.execute(
            select(OrderItem.sku, OrderItemCategory.category)
            .join(OrderItem, OrderItem.id == OrderItemCategory.item_id)
            .order_by(OrderItemCategory.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_orders_then_items_from_csv_again_and_again(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    defaults = settings.customers
    import_csv(sessions, "customers", write(tmp_path / "c.csv", CUSTOMERS), defaults)
    import_csv(sessions, "orders", write(tmp_path / "o.csv", ORDERS), defaults)
    items = write(tmp_path / "items.csv", ITEMS)
    first = import_csv(sessions, "items", items, defaults)
    assert (first.rows, first.inserted, first.rejected, first.unmapped) == (3, 3, 0, [])
    expected = [
        ("1001", 1, "TEA-57", "چای ماسالا", 2, "400000.00"),  # price × quantity
        ("1001", 2, "POT-90", "قوری", 1, "100000.00"),
        ("1002", 1, "TEA-57", "چای ماسالا", 1, "90000.00"),
    ]
    assert stored(sessions) == expected
    # In a text cell `,` `;` `|` all separate (the Persian «،» does not); each item's
    # categories are stored sorted.
    assert categories(sessions) == [
        ("TEA-57", "drinks"),
        ("TEA-57", "hot"),
        ("TEA-57", "چای، دمنوش"),
        ("POT-90", "ظروف"),
        ("TEA-57", "چای، دمنوش"),
    ]
    again = import_csv(sessions, "items", items, defaults)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert stored(sessions) == expected  # no duplicated lines
    assert len(categories(sessions)) == 5
    # A corrected export: order 1001 now has one line; 1002 is untouched.
    write(items, "order_id,sku,name,quantity,line_total\n1001,TEA-57,Chai,3,600000\n")
    fixed = import_csv(sessions, "items", items, defaults)
    assert (fixed.updated, fixed.unchanged) == (1, 0)
    assert stored(sessions) == [
        ("1001", 1, "TEA-57", "Chai", 3, "600000.00"),
        ("1002", 1, "TEA-57", "چای ماسالا", 1, "90000.00"),
    ]
    assert categories(sessions) == [("TEA-57", "چای، دمنوش")]


def test_bad_lines_reject_their_whole_order_with_line_and_field(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    defaults = settings.customers
    import_csv(sessions, "customers", write(tmp_path / "c.csv", CUSTOMERS), defaults)
    import_csv(sessions, "orders", write(tmp_path / "o.csv", ORDERS), defaults)
    items = write(
        tmp_path / "items.csv",
        "order_id,sku,name,quantity\n"
        "1001,TEA-57,Chai,2\n"
        "1001,POT-90,Pot,lots\n"
        "1002,TEA-57,Chai,1\n"
        "9999,TEA-57,Chai,1\n"
        "1001,MUG-1,Mug,1\n",
    )
    report = import_csv(sessions, "items", items, defaults)
    assert (report.inserted, report.rejected) == (1, 4)
    assert report.reject_file is not None
    rejects = report.reject_file.read_text(encoding="utf-8").splitlines()[1:]
    assert [line.split(",")[:2] for line in rejects] == [
        ['"6"', "\"lines of order '1001' must be together: its lines start at line 2\""],
        ['"2"', "\"order '1001' has a rejected line; none of its lines were loaded\""],
        ['"3"', "\"bad quantity 'lots'\""],
        ['"5"', "\"unknown order '9999'\""],
    ]
    # Counted by kind in the summary: the values and the line named left out.
    assert report.reasons == {
        "lines of order … must be together: its lines start at line …": 1,
        "order … has a rejected line; none of its lines were loaded": 1,
        "bad quantity …": 1,
        "unknown order …": 1,
    }
    assert stored(sessions) == [("1002", 1, "TEA-57", "Chai", 1, "0.00")]


def test_shopify_order_export_line_items(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Shopify's orders export (Admin > Orders > Export) has one row per line item, keyed by
    the order's Name; columns as laid out in laplace-live/shopify-csv-converter,
    src/types/index.d.ts (ShopifyOrderExportItem), a subset kept."""
    defaults = settings.customers
    import_csv(sessions, "customers", write(tmp_path / "c.csv", CUSTOMERS), defaults)
    orders = "id,customer_id,total,status,paid_at\n#1165,c1,30,paid,2026-01-01T10:00:00Z\n"
    import_csv(sessions, "orders", write(tmp_path / "o.csv", orders), defaults)
    export = write(
        tmp_path / "orders_export.csv",
        "Name,Email,Financial Status,Paid at,Lineitem quantity,Lineitem name,"
        "Lineitem price,Lineitem sku,Vendor\n"
        "#1165,ali@example.com,paid,2026-01-01 10:00:00 +0000,2,Masala chai,10.00,TEA-57,Chai Co\n"
        "#1165,,,,1,Teapot,10.00,POT-90,Pots Ltd\n",
    )
    report = import_csv(sessions, "items", export, defaults, mapping={"Name": "order_id"})
    assert (report.inserted, report.rejected) == (2, 0)
    assert report.unmapped == ["Email", "Financial Status", "Paid at", "Vendor"]
    assert stored(sessions) == [
        ("#1165", 1, "TEA-57", "Masala chai", 2, "20.00"),  # line total: price × quantity
        ("#1165", 2, "POT-90", "Teapot", 1, "10.00"),
    ]


def test_orders_import_command_takes_an_items_file(tmp_path: Path, db_url: str) -> None:
    config = write(tmp_path / "config.toml", f'[database]\nurl = "{db_url}"\n')

    def run(*args: str) -> list[str]:
        result = CliRunner().invoke(cli, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output.splitlines()

    run("customers", "import", str(write(tmp_path / "c.csv", CUSTOMERS)))
    orders, items = write(tmp_path / "o.csv", ORDERS), write(tmp_path / "i.csv", ITEMS)
    assert run("orders", "import", str(orders), "--items", str(items)) == [
        f"{orders}: 2 rows: 2 new, 0 updated, 0 unchanged, 0 rejected",
        f"{items}: 3 rows: 3 new, 0 updated, 0 unchanged, 0 rejected",
    ]
    assert run("orders", "import", "--items", str(items)) == [
        f"{items}: 3 rows: 0 new, 0 updated, 3 unchanged, 0 rejected"
    ]
    result = CliRunner().invoke(cli, ["--config", str(config), "orders", "import"])
    assert result.exit_code == 2 and "--items FILE" in result.output


def test_an_order_with_more_lines_than_a_batch_is_loaded_whole(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """A batch ends between orders only: 3 orders of 600 lines each (batches are 1,000 rows)
    keep all their lines, and loading them again changes nothing."""
    defaults = settings.customers
    import_csv(sessions, "customers", write(tmp_path / "c.csv", CUSTOMERS), defaults)
    orders = "id,customer_id,total,status,paid_at\n" + "".join(
        f"{n},c1,1,paid,2026-01-0{n}T10:00:00Z\n" for n in (1, 2, 3)
    )
    import_csv(sessions, "orders", write(tmp_path / "o.csv", orders), defaults)
    lines = "order_id,sku,quantity\n" + "".join(
        f"{order},SKU-{n},1\n" for order in (1, 2, 3) for n in range(600)
    )
    items = write(tmp_path / "items.csv", lines)
    assert import_csv(sessions, "items", items, defaults).inserted == 1800
    assert import_csv(sessions, "items", items, defaults).unchanged == 1800
    counts: dict[str, int] = {}
    for order, *_ in stored(sessions):
        counts[order] = counts.get(order, 0) + 1
    assert counts == {"1": 600, "2": 600, "3": 600}


def test_an_items_line_too_wide_is_kept_fitted_with_a_warning(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    """As on an order (`customers.widths`): a long name is cut, a long SKU left out; the
    line and its order are kept, not rejected."""
    shop = ProductShop(sessions, settings)
    shop.customer("ali")
    shop.order("ali", day(0), external_id="o1")
    line = {"order_id": "o1", "name": "چای " * 100, "sku": "S" * 200, "product_id": "57"}
    with sessions.begin() as session:
        result = load_items(session, [line], settings.customers, now=day(0))
    assert (result.inserted, result.errors) == (1, [])
    assert [w.reason for w in result.warnings] == [
        "item 1: name of 399 characters cut to 255",  # spaces folded first
        "item 1: sku longer than 128 characters: left out",
    ]
    with sessions() as session:
        item = session.scalars(select(OrderItem)).one()
    assert (item.name, item.sku, item.product_id) == (("چای " * 100)[:255].rstrip(), None, "57")


def test_a_category_longer_than_its_column_is_cut_with_a_warning_naming_the_line(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """Regression: a 300-character category was cut to 255 without a word: the import said
    nothing was shortened, and a rule naming the whole category never matched it."""
    long_category = "Tea " + "x" * 296
    import_csv(sessions, "customers", write(tmp_path / "c.csv", CUSTOMERS), settings.customers)
    import_csv(sessions, "orders", write(tmp_path / "o.csv", ORDERS), settings.customers)
    items = (
        "order_id,sku,name,categories,quantity,unit_price\n"
        f'1001,TEA-57,Masala,"{long_category}|Drinks",1,500000\n'
    )
    report = import_csv(sessions, "items", write(tmp_path / "i.csv", items), settings.customers)
    assert (report.inserted, report.rejected, report.shortened) == (1, 0, 1)
    assert report.shortened_examples == ["line 2: item 1: category of 300 characters cut to 255"]
    assert "1 value(s) too long, shortened" in report.summary()
    assert categories(sessions) == [("TEA-57", "drinks"), ("TEA-57", long_category.lower()[:255])]


def test_an_items_amounts_are_read_by_its_orders_currency(
    tmp_path: Path, sessions: sessionmaker[Session], settings: Settings
) -> None:
    """The items file has no currency: its amounts are its order's. `150.000` is 150,000
    in a toman order and ambiguous in a dollar one (rejected, with the order's other lines)."""
    defaults = settings.customers
    import_csv(sessions, "customers", write(tmp_path / "c.csv", CUSTOMERS), defaults)
    orders = (
        "id,customer_id,total,currency,status,paid_at\n"
        "1001,c1,500000,IRT,paid,2026-01-01T10:00:00+03:30\n"
        "1002,c2,90,USD,paid,2026-01-02T10:00:00+03:30\n"
    )
    import_csv(sessions, "orders", write(tmp_path / "o.csv", orders), defaults)
    items = "order_id,sku,name,unit_price\n1001,TEA,Tea,150.000\n1002,POT,Pot,150.000\n"
    report = import_csv(sessions, "items", write(tmp_path / "items.csv", items), defaults)
    assert (report.inserted, report.rejected) == (1, 1)
    assert stored(sessions) == [("1001", 1, "TEA", "Tea", 1, "150000.00")]
    assert report.rejections() == [
        "      1 × unit_price: ambiguous amount …: USD has 2 decimals, not 3; is a dot between "
        "thousands? write 150000, 150,000 or 150.00 (line 3)"
    ]
