"""Messages: sandboxed templates, personalisation, Persian and Jalali, SMS size, coupons."""
