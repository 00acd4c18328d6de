"""The stand-in's Stripe account: objects by id, the event log, and the clock.

One re-entrant lock guards everything. An operation validates before it changes anything, so a refused request
leaves no trace; the events it emits collect in `emitted` until the HTTP layer takes them for delivery, which
happens outside the lock (a webhook receiver may call back into the stand-in).

With a state file, everything Stripe would remember (objects, events and their deliveries, idempotent answers,
the clock's advance) is written there after each change and read back at start: `make run` keeps its customers
and subscriptions across restarts, as the database keeps their ids.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

from devstack.standin import objects
from devstack.standin.errors import StripeError, invalid, no_such
from devstack.standin.forms import Params

OUTCOMES = ("succeed", "decline", "requires_action")
STATE_VERSION = 1
NOUNS = {"payment_method": "PaymentMethod", "checkout.session": "checkout session"}


class Store:
    def __init__(self, clock: Callable[[], float], public_base_url: str, state_path: Path | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.public_base_url = public_base_url
        self.state_path = state_path
        # How far the stand-in's clock was advanced past `clock` (test clocks); it never goes back.
        self.clock_advance = 0.0
        # Answers kept for idempotency keys: "<api key> <idempotency key>" -> what was answered.
        self.saved_answers: dict[str, dict[str, Any]] = {}
        self.objects: dict[str, dict[str, Any]] = {}
        # What Stripe keeps but does not show: a session's line items, a subscription's period count.
        self.hidden: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.emitted: list[dict[str, Any]] = []
        self.pending_webhooks = 0
        self.next_outcome = "succeed"

    def now(self) -> int:
        return int(self.clock() + self.clock_advance)

    def advance_to(self, instant: int) -> None:
        """The stand-in's clock reads at least `instant` from now on."""
        self.clock_advance = max(self.clock_advance, instant - self.clock())

    def save(self) -> None:
        """Writes the state file (when there is one) whole: a new file, then renamed over the old one."""
        if self.state_path is None:
            return
        state = {
            "version": STATE_VERSION, "objects": self.objects, "hidden": self.hidden,
            "events": [event["id"] for event in self.events], "deliveries": self.deliveries,
            "next_outcome": self.next_outcome, "clock_advance": self.clock_advance,
            "saved_answers": self.saved_answers,
        }
        temporary = self.state_path.with_name(self.state_path.name + ".tmp")
        with open(temporary, "w", encoding="utf-8") as file:
            json.dump(state, file, separators=(",", ":"))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self.state_path)

    def load(self) -> bool:
        """Reads the state file back; False when there is none yet."""
        if self.state_path is None or not self.state_path.exists():
            return False
        state = json.loads(self.state_path.read_text(encoding="utf-8"))
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"{self.state_path}: state version {state.get('version')!r}, expected {STATE_VERSION}")
        self.objects = state["objects"]
        self.hidden = state["hidden"]
        self.events = [self.objects[event_id] for event_id in state["events"]]
        self.deliveries = state["deliveries"]
        self.next_outcome = state["next_outcome"]
        self.clock_advance = float(state["clock_advance"])
        self.saved_answers = state["saved_answers"]
        return True

    def add(self, obj: dict[str, Any], **hidden: Any) -> dict[str, Any]:
        self.objects[obj["id"]] = obj
        if hidden:
            self.hidden[obj["id"]] = hidden
        return obj

    def find(self, kind: str, object_id: str | None) -> dict[str, Any] | None:
        obj = self.objects.get(object_id or "")
        return obj if obj is not None and obj["object"] == kind else None

    def get(self, kind: str, object_id: str | None, param: str = "id") -> dict[str, Any]:
        obj = self.find(kind, object_id)
        if obj is None:
            raise no_such(NOUNS.get(kind, kind), object_id or "", param)
        return obj

    def newest_first(self, kind: str) -> list[dict[str, Any]]:
        # Insertion order breaks ties between objects created in the same second.
        found = [obj for obj in reversed(self.objects.values()) if obj["object"] == kind]
        return sorted(found, key=lambda obj: -obj["created"])

    def page(self, found: list[dict[str, Any]], params: Params, url: str) -> dict[str, Any]:
        limit = params.integer("limit", minimum=1) or 10
        if limit > 100:
            raise invalid("Invalid limit: must be between 1 and 100", "limit")
        after = params.text("starting_after")
        if after is not None:
            ids = [obj["id"] for obj in found]
            if after not in ids:
                raise no_such("object", after, "starting_after")
            found = found[ids.index(after) + 1:]
        return objects.list_object(found[:limit], url, has_more=len(found) > limit)

    def emit(self, event_type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None) -> dict[str, Any]:
        event = objects.event(self.now(), event_type, copy.deepcopy(obj), previous, self.pending_webhooks)
        self.events.append(event)
        self.objects[event["id"]] = event
        self.emitted.append(event)
        return event

    def take_emitted(self) -> list[dict[str, Any]]:
        emitted, self.emitted = self.emitted, []
        return emitted

    def take_outcome(self) -> str:
        outcome, self.next_outcome = self.next_outcome, "succeed"
        return outcome

    def event_records(self) -> list[dict[str, Any]]:
        never = {"delivery_attempts": 0, "last_delivery_status": None, "next_delivery_at": None}
        return [{**copy.deepcopy(event), **self.deliveries.get(event["id"], never)} for event in self.events]

    def expand(self, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """Stripe's `expand[]`: ids along a dotted path become the objects (parents are expanded on the way)."""
        result = copy.deepcopy(obj)
        for path in paths:
            self._expand(result, path.split("."), path)
        return result

    def _expand(self, container: dict[str, Any], parts: list[str], path: str) -> None:
        key, rest = parts[0], parts[1:]
        if key not in container:
            extra = self._extra_expansion(container, key)
            if extra is None:
                raise invalid(f"This property cannot be expanded ({path}).", "expand")
            container[key] = extra
        value = container[key]
        if isinstance(value, str) and value in self.objects:
            value = container[key] = copy.deepcopy(self.objects[value])
        elif not rest and not (value is None or isinstance(value, dict)):
            raise invalid(f"This property cannot be expanded ({path}).", "expand")
        if not rest:
            return
        if isinstance(value, list):
            for element in value:
                if isinstance(element, dict):
                    self._expand(element, rest, path)
        elif isinstance(value, dict):
            self._expand(value, rest, path)

    def _extra_expansion(self, container: dict[str, Any], key: str) -> dict[str, Any] | None:
        # A session's line items are not part of it unless asked for, as in Stripe.
        if container.get("object") == "checkout.session" and key == "line_items":
            items = self.hidden.get(container["id"], {}).get("line_items", [])
            return objects.list_object(copy.deepcopy(items), f"/v1/checkout/sessions/{container['id']}/line_items")
        return None


def set_next_outcome(store: Store, outcome: object) -> str:
    if outcome not in OUTCOMES:
        raise StripeError(400, f"outcome must be one of {', '.join(OUTCOMES)}", param="outcome")
    assert isinstance(outcome, str)
    store.next_outcome = outcome
    return outcome
