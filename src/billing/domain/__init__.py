"""The bucket engine: pure functions and dataclasses. No I/O, no clock, no transport."""
