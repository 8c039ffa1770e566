"""Storage: the interface the domain calls (interface.py), its records and errors, and the engines behind it
(sqlite/; factory.py picks one from the location)."""
