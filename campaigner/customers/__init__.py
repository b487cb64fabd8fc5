"""Customers and orders: normalisation, CSV import, demo data."""
