"""The schema version this rollcall writes: the same numbering for every engine (SQLite's migrations in
app/storage/sqlite/migrations.py; each engine's step N brings its schema to the same version N)."""

SCHEMA_VERSION = 5
