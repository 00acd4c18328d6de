"""Usage and billing service for prepaid AI time."""
