"""Plain domain objects: no I/O, importable from every layer."""
