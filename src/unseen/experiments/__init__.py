"""Runs, run records and their storage."""
