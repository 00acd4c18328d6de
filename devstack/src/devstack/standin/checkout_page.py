"""The hosted Checkout page a buyer is sent to (`session.url`): the items, the total, Pay / Decline / Cancel."""

from __future__ import annotations

from html import escape
from typing import Any

from devstack.standin.objects import format_amount

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;color:#222}"
    "table{width:100%;border-collapse:collapse}td{padding:.4rem 0;border-bottom:1px solid #ddd}"
    "td.n{text-align:right}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}"
    ".note{color:#666;font-size:.9rem}.error{color:#b00020}"
)


def render(session: dict[str, Any], line_items: list[dict[str, Any]], *, declined: bool = False) -> str:
    title = f"Checkout — {session['mode']}"
    body = [f"<h1>Stripe stand-in checkout</h1><p class='note'>{escape(session['id'])} (test mode)</p>"]
    if session["status"] != "open":
        body.append(f"<p>This Checkout Session is <strong>{escape(session['status'])}</strong>.</p>")
        return _page(title, body)
    if line_items:
        rows = "".join(
            f"<tr><td>{escape(item['description'])} × {item['quantity']}{_every(item['price'])}</td>"
            f"<td class='n'>{escape(format_amount(item['amount_total'], item['currency']))}</td></tr>"
            for item in line_items
        )
        total = format_amount(session["amount_total"] or 0, session["currency"] or "usd")
        body.append(f"<table>{rows}<tr><td><strong>Total</strong></td>"
                    f"<td class='n'><strong>{escape(total)}</strong></td></tr></table>")
        pay_label = f"Pay {total}"
    else:
        body.append("<p>Save a card for future payments.</p>")
        pay_label = "Save card"
    if declined:
        body.append("<p class='error'>Your card was declined. Try again.</p>")
    body.append(
        # Relative, so the page also works behind a proxy that serves it under a path prefix.
        f"<form method='post' action='{escape(session['id'])}/pay'>"
        f"<p class='note'>Card: Visa •••• 4242 (Decline uses 4000 0000 0000 0002)</p>"
        f"<button name='outcome' value='succeed'>{escape(pay_label)}</button>"
        "<button name='outcome' value='decline'>Decline</button>"
    )
    if session["cancel_url"]:
        body.append(f"<a href='{escape(session['cancel_url'])}'>Cancel</a>")
    body.append("</form>")
    return _page(title, body)


def render_done(message: str) -> str:
    return _page("Checkout", [f"<h1>Stripe stand-in checkout</h1><p>{escape(message)}</p>"])


def _every(price: dict[str, Any]) -> str:
    recurring = price.get("recurring")
    return f" / {escape(recurring['interval'])}" if recurring else ""


def _page(title: str, body: list[str]) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>")
