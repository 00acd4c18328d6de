"""Use cases: one module each, one unit of work each."""
