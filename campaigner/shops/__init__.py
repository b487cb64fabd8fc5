"""Shop platforms' own payloads (WooCommerce, Shopify) as Campaigner customer and order records."""
