"""Rules: marketer-written TOML files, validated, and compiled to SQL by trigger."""
