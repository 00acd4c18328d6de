"""Generated from protos/ by tools/gen_protos.py (`make gen`); do not edit."""
