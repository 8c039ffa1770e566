"""The SQLite engine: one file, a writer thread, reader threads, and the event loop's own connection."""
