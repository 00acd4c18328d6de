"""Generates, from protos/, the Python stubs and Envoy's descriptor set (gen/) and the TypeScript
types of the REST JSON (clients/typescript/src/generated/).

`make gen` writes both; the stale-code tests write into temporary folders and compare, so every
path goes through these functions.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
THIRD_PARTY = ROOT / "third_party" / "protos"
DESCRIPTOR_NAME = "billing_descriptor.pb"
# Each proto package is a regular Python package (billing.v1), so an editable install can map it to gen/.
PACKAGE_INIT = '"""Generated from protos/ by tools/gen_protos.py (`make gen`); do not edit."""\n'

TS_OUT = ROOT / "clients" / "typescript" / "src" / "generated"
# ts-proto, a devDependency of clients/typescript (npm ci installs it; `make gen` depends on that).
TS_PLUGIN = ROOT / "clients" / "node_modules" / ".bin" / "protoc-gen-ts_proto"
# Interfaces only, shaped as Envoy's transcoder prints them (preserve_proto_field_names): proto field
# names kept, int64 as strings, Timestamp as an RFC 3339 string, Struct as an object, Value as any
# (types.ts narrows it); no runtime code, so the browser bundle gains nothing. docs/decisions.md.
TS_OPTIONS = ",".join([
    "onlyTypes=true", "useJsonWireFormat=true", "snakeToCamel=false", "forceLong=string", "useOptionals=none",
    "exportCommonSymbols=false", "outputServices=false", "importSuffix=.js",
])
TS_IMPORT = re.compile(r'^import type \{[^}]*\} from "([^"]+)";$', re.M)


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))


def _protoc(*args: str) -> None:
    well_known = str(resources.files("grpc_tools") / "_proto")
    if protoc.main(["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{THIRD_PARTY}", f"-I{well_known}", *args]) != 0:
        raise SystemExit("protoc failed")


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    _protoc(
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "--include_imports",
        f"--descriptor_set_out={out_dir / DESCRIPTOR_NAME}",
        *proto_files(),
    )
    for package in sorted({Path(name).parent for name in proto_files()}):
        (out_dir / package / "__init__.py").write_text(PACKAGE_INIT)


def generate_typescript(out_dir: Path) -> None:
    """Replaces out_dir with the types of protos/ and of the imported files they use (HttpBody, Any),
    but not the rest of the imports' closure (google.api.http, descriptor.proto): nothing refers to it."""
    if not TS_PLUGIN.exists():
        raise SystemExit(f"{TS_PLUGIN.relative_to(ROOT)} is missing: run `make test-ts` (npm ci in clients/) first")
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch)
        _protoc(f"--plugin=protoc-gen-ts_proto={TS_PLUGIN}", f"--ts_proto_out={raw}", f"--ts_proto_opt={TS_OPTIONS}",
                *proto_files())
        wanted = _imported_closure(raw, [Path(name).with_suffix(".ts") for name in proto_files()])
        shutil.rmtree(out_dir, ignore_errors=True)
        for name in sorted(wanted):
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(raw / name, out_dir / name)


def _imported_closure(folder: Path, roots: list[Path]) -> set[Path]:
    seen: set[Path] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for target in TS_IMPORT.findall((folder / name).read_text()):
            todo.append(Path(_normalise(name.parent / target)).with_suffix(".ts"))
    return seen


def _normalise(path: Path) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen")
    generate_typescript(Path(sys.argv[2]) if len(sys.argv) > 2 else TS_OUT)
