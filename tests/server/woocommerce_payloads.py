"""WooCommerce webhook bodies and headers as WooCommerce sends them, for the shop webhook tests.

A webhook's body is the REST API (v3) representation of its resource
(`WC_Webhook::get_wp_api_payload`), so the bodies are the REST API documentation's examples,
whole. Tests change a copy (`copy.deepcopy`) and say what they changed and why.
"""

from __future__ import annotations

from typing import Any

# What `WC_Webhook::deliver()` sends besides the body, in woocommerce/woocommerce
# plugins/woocommerce/includes/class-wc-webhook.php: Content-Type, the user agent
# 'WooCommerce/%s Hookshot (WordPress/%s)', X-WC-Webhook-Source (home_url('/')),
# -Topic, -Resource, -Event, -Signature (set per request by the test), -ID (the webhook's
# id) and -Delivery-ID (wp_hash of the id and the time: 32 hex digits).
HEADERS: dict[str, str] = {
    "Content-Type": "application/json",
    "User-Agent": "WooCommerce/9.8.5 Hookshot (WordPress/6.8.1)",
    "X-WC-Webhook-Source": "https://example.com/",
    "X-WC-Webhook-ID": "12",
    "X-WC-Webhook-Delivery-ID": "6f1e8a9e0c5d4b3a29187f6e5d4c3b2a",
}


def ping(webhook_id: int) -> tuple[bytes, dict[str, str]]:
    """`WC_Webhook::deliver_ping()`: body 'webhook_id=' . id, a user agent, no signature."""
    return f"webhook_id={webhook_id}".encode(), {"User-Agent": HEADERS["User-Agent"]}


def refund_entry(refund_id: int, reason: str, amount: str) -> dict[str, Any]:
    """One entry of an order's `refunds`, as `get_refunds()` builds it in
    plugins/woocommerce/includes/rest-api/Controllers/Version2/class-wc-rest-orders-v2-controller.php:
    'id', 'reason' and 'total' => '-' . wc_format_decimal( amount )."""
    return {"id": refund_id, "reason": reason, "total": f"-{amount}"}


# woocommerce/woocommerce-rest-api-docs source/includes/wp-api-v3/_orders.md, "Retrieve an
# order", JSON response example (order 727), whole. A guest order (customer_id 0) whose
# second line item's name carries an HTML entity, as the REST API returns it.
ORDER: dict[str, Any] = {
    "id": 727,
    "parent_id": 0,
    "number": "727",
    "order_key": "wc_order_58d2d042d1d",
    "created_via": "rest-api",
    "version": "3.0.0",
    "status": "processing",
    "currency": "USD",
    "date_created": "2017-03-22T16:28:02",
    "date_created_gmt": "2017-03-22T19:28:02",
    "date_modified": "2017-03-22T16:28:08",
    "date_modified_gmt": "2017-03-22T19:28:08",
    "discount_total": "0.00",
    "discount_tax": "0.00",
    "shipping_total": "10.00",
    "shipping_tax": "0.00",
    "cart_tax": "1.35",
    "total": "29.35",
    "total_tax": "1.35",
    "prices_include_tax": False,
    "customer_id": 0,
    "customer_ip_address": "",
    "customer_user_agent": "",
    "customer_note": "",
    "billing": {
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "address_1": "969 Market",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94103",
        "country": "US",
        "email": "john.doe@example.com",
        "phone": "(555) 555-5555",
    },
    "shipping": {
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "address_1": "969 Market",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94103",
        "country": "US",
    },
    "payment_method": "bacs",
    "payment_method_title": "Direct Bank Transfer",
    "transaction_id": "",
    "date_paid": "2017-03-22T16:28:08",
    "date_paid_gmt": "2017-03-22T19:28:08",
    "date_completed": None,
    "date_completed_gmt": None,
    "cart_hash": "",
    "meta_data": [{"id": 13106, "key": "_download_permissions_granted", "value": "yes"}],
    "line_items": [
        {
            "id": 315,
            "name": "Woo Single #1",
            "product_id": 93,
            "variation_id": 0,
            "quantity": 2,
            "tax_class": "",
            "subtotal": "6.00",
            "subtotal_tax": "0.45",
            "total": "6.00",
            "total_tax": "0.45",
            "taxes": [{"id": 75, "total": "0.45", "subtotal": "0.45"}],
            "meta_data": [],
            "sku": "",
            "price": 3,
        },
        {
            "id": 316,
            "name": "Ship Your Idea &ndash; Color: Black, Size: M Test",
            "product_id": 22,
            "variation_id": 23,
            "quantity": 1,
            "tax_class": "",
            "subtotal": "12.00",
            "subtotal_tax": "0.90",
            "total": "12.00",
            "total_tax": "0.90",
            "taxes": [{"id": 75, "total": "0.9", "subtotal": "0.9"}],
            "meta_data": [
                {"id": 2095, "key": "pa_color", "value": "black"},
                {"id": 2096, "key": "size", "value": "M Test"},
            ],
            "sku": "Bar3",
            "price": 12,
        },
    ],
    "tax_lines": [
        {
            "id": 318,
            "rate_code": "US-CA-STATE TAX",
            "rate_id": 75,
            "label": "State Tax",
            "compound": False,
            "tax_total": "1.35",
            "shipping_tax_total": "0.00",
            "meta_data": [],
        }
    ],
    "shipping_lines": [
        {
            "id": 317,
            "method_title": "Flat Rate",
            "method_id": "flat_rate",
            "total": "10.00",
            "total_tax": "0.00",
            "taxes": [],
            "meta_data": [],
        }
    ],
    "fee_lines": [],
    "coupon_lines": [],
    "refunds": [],
    "_links": {
        "self": [{"href": "https://example.com/wp-json/wc/v3/orders/727"}],
        "collection": [{"href": "https://example.com/wp-json/wc/v3/orders"}],
    },
}

# order.deleted, for order 727: `WC_Webhook::build_payload()` in woocommerce/woocommerce
# plugins/woocommerce/includes/class-wc-webhook.php sends only `array( 'id' => $resource_id )`
# for a 'deleted' event ("If a resource has been deleted, just include the ID in the
# payload"). The topic's hooks are wp_trash_post and woocommerce_trash_order: the order was
# moved to the bin. order.restored (untrashed_post, woocommerce_untrash_order) sends the
# whole order, as order.updated does.
DELETED_ORDER: dict[str, Any] = {"id": 727}

# woocommerce/woocommerce-rest-api-docs source/includes/wp-api-v3/_customers.md, "List all
# customers", JSON response example, the customer with id 25, whole.
CUSTOMER: dict[str, Any] = {
    "id": 25,
    "date_created": "2017-03-21T16:09:28",
    "date_created_gmt": "2017-03-21T19:09:28",
    "date_modified": "2017-03-21T16:09:30",
    "date_modified_gmt": "2017-03-21T19:09:30",
    "email": "john.doe@example.com",
    "first_name": "John",
    "last_name": "Doe",
    "role": "customer",
    "username": "john.doe",
    "billing": {
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "address_1": "969 Market",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94103",
        "country": "US",
        "email": "john.doe@example.com",
        "phone": "(555) 555-5555",
    },
    "shipping": {
        "first_name": "John",
        "last_name": "Doe",
        "company": "",
        "address_1": "969 Market",
        "address_2": "",
        "city": "San Francisco",
        "state": "CA",
        "postcode": "94103",
        "country": "US",
    },
    "is_paying_customer": False,
    "avatar_url": "https://secure.gravatar.com/avatar/8eb1b522f60d11fa897de1dc6351b7e8?s=96",
    "meta_data": [],
    "_links": {
        "self": [{"href": "https://example.com/wp-json/wc/v3/customers/25"}],
        "collection": [{"href": "https://example.com/wp-json/wc/v3/customers"}],
    },
}
