"""Stripe's request parameters: form bodies in bracket syntax, the parameters an endpoint knows, typed reads.

`line_items[0][price_data][currency]=usd&expand[]=x` decodes to
`{"line_items": [{"price_data": {"currency": "usd"}}], "expand": ["x"]}`. The SDK always sends indexed arrays
(`expand[0]=x`); `[]` is what curl users type.
"""

from __future__ import annotations

import re
from typing import Any, Union
from urllib.parse import parse_qsl

from devstack.standin.errors import StripeError, invalid, missing

SCALAR = "scalar"
MAP = "map"  # metadata: free string keys, string values
Spec = Union[str, dict[str, "Spec"], list["Spec"]]

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
METADATA_KEYS = 50
METADATA_KEY_LENGTH = 40
METADATA_VALUE_LENGTH = 500


def decode_form(body: str) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        match = _KEY.match(raw_key)
        if match is None:
            raise invalid(f"Invalid parameter name: {raw_key}", raw_key)
        parts = [match.group(1), *_PART.findall(match.group(2))]
        if "" in parts[:-1]:
            raise invalid(f"Invalid array parameter {raw_key}: index arrays of objects (a[0][b]=...)", raw_key)
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise invalid(f"Invalid parameter {raw_key}: {part} is given both as a value and as an object", raw_key)
            node = child
        last = parts[-1] if parts[-1] != "" else str(len(node))
        if isinstance(node.get(last), dict):
            raise invalid(f"Invalid parameter {raw_key}: it is given both as a value and as an object", raw_key)
        node[last] = value
    return _with_lists(root, parent=None)


def _with_lists(node: dict[str, Any], parent: str | None) -> Any:
    converted = {key: _with_lists(value, key) if isinstance(value, dict) else value for key, value in node.items()}
    # Metadata keys may be digits; everything else keyed 0, 1, ... is an array.
    if converted and parent != "metadata" and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


def check_known(params: dict[str, Any], spec: dict[str, Spec], prefix: str = "") -> None:
    """Stripe refuses parameters it does not know; so does the stand-in, for the ones it does not implement."""
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else key
        if key not in spec:
            raise StripeError(
                400,
                f"Received unknown parameter: {name} (the local Stripe stand-in does not implement it)",
                param=name,
                code="parameter_unknown",
            )
        _check_value(value, spec[key], name)


def _check_value(value: Any, spec: Spec, name: str) -> None:
    if value == "" and spec != SCALAR:
        return  # an empty value unsets an object parameter
    if spec == SCALAR:
        if not isinstance(value, str):
            raise invalid(f"Invalid value for {name}: expected a single value", name)
    elif spec == MAP:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise invalid(f"Invalid {name}: expected a hash of strings", name)
    elif isinstance(spec, dict):
        if not isinstance(value, dict):
            raise invalid(f"Invalid object: {name}", name)
        check_known(value, spec, name)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            raise invalid(f"Invalid array: {name}", name)
        for index, element in enumerate(value):
            _check_value(element, spec[0], f"{name}[{index}]")


class Params:
    """Typed reads of decoded parameters; errors name the parameter the way Stripe does (`a[0][b]`)."""

    def __init__(self, data: dict[str, Any] | str | None, path: str = "") -> None:
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.path = path

    def name(self, key: str) -> str:
        return f"{self.path}[{key}]" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str, *, required: bool = False, choices: tuple[str, ...] = ()) -> str | None:
        value = self.data.get(key)
        if value is None or value == "":
            if required:
                raise missing(self.name(key))
            return None
        if not isinstance(value, str):
            raise invalid(f"Invalid value for {self.name(key)}", self.name(key))
        if choices and value not in choices:
            raise invalid(f"Invalid {self.name(key)}: must be one of {', '.join(choices)}", self.name(key))
        return value

    def integer(self, key: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self.text(key, required=required)
        if value is None:
            return None
        try:
            number = int(value)
        except ValueError:
            raise invalid(f"Invalid integer: {value}", self.name(key), "parameter_invalid_integer") from None
        if minimum is not None and number < minimum:
            raise invalid(
                f"Invalid {self.name(key)}: must be at least {minimum}", self.name(key), "parameter_invalid_integer"
            )
        return number

    def flag(self, key: str) -> bool | None:
        value = self.text(key)
        if value is None:
            return None
        if value not in ("true", "false"):
            raise invalid(f"Invalid boolean: {value}", self.name(key))
        return value == "true"

    def obj(self, key: str) -> Params:
        return Params(self.data.get(key), self.name(key))

    def array(self, key: str) -> list[Params]:
        value = self.data.get(key)
        elements = value if isinstance(value, list) else []
        return [Params(element, f"{self.name(key)}[{index}]") for index, element in enumerate(elements)]

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key)
        return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

    def metadata(self, key: str = "metadata") -> dict[str, str] | None:
        """None when absent; {} for `metadata=`; an empty value means "remove this key" on update."""
        if key not in self.data:
            return None
        value = self.data[key]
        if value == "":
            return {}
        assert isinstance(value, dict)  # check_known ran first
        if len(value) > METADATA_KEYS:
            raise invalid(f"Invalid {self.name(key)}: at most {METADATA_KEYS} keys", self.name(key))
        for meta_key, meta_value in value.items():
            if len(meta_key) > METADATA_KEY_LENGTH:
                raise invalid(
                    f"Metadata keys can be at most {METADATA_KEY_LENGTH} characters: {meta_key}", self.name(key)
                )
            if len(meta_value) > METADATA_VALUE_LENGTH:
                raise invalid(
                    f"Metadata values can be at most {METADATA_VALUE_LENGTH} characters ({meta_key})", self.name(key)
                )
        return dict(value)


def merge_metadata(current: dict[str, str], update: dict[str, str] | None) -> dict[str, str]:
    """Stripe merges metadata on update; an empty value removes a key, `metadata=` (read as {}) removes them all."""
    if update is None:
        return current
    if not update:
        return {}
    merged = dict(current)
    for key, value in update.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged
