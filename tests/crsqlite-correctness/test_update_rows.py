"""Upstream's test_update_rows.py holds no test (only an import); kept for the file list."""
