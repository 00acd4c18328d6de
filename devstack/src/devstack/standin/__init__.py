"""A local stand-in for the Stripe HTTP API: a development and test tool, never used in production.

`python -m devstack.standin.stripe_standin` serves it; tests start `StripeStandin` in-process and point the
official `stripe` SDK at it (`base_addresses={"api": standin.api_base}`). Nothing in the service imports it.
"""
