"""The admin API for keys and the usage API (issue 6)."""
