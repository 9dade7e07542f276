"""Persistence: the run journal (SQLite)."""
