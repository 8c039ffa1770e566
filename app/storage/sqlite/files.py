"""How the SQLite engine creates the files it owns."""

# Everything rollcall writes holds personal data or token hashes: only its own user may read it.
PRIVATE_FILE_MODE = 0o600
