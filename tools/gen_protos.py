"""Generates Python stubs and Envoy's descriptor set from protos/ into an output folder.

`make gen` writes into gen/; the stale-code test writes into a temporary folder and
compares, so both go through this one function.
"""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
THIRD_PARTY = ROOT / "third_party" / "protos"
DESCRIPTOR_NAME = "billing_descriptor.pb"
# Each proto package is a regular Python package (billing.v1), so an editable install can map it to gen/.
PACKAGE_INIT = '"""Generated from protos/ by tools/gen_protos.py (`make gen`); do not edit."""\n'


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))


def generate(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = str(resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{THIRD_PARTY}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "--include_imports",
        f"--descriptor_set_out={out_dir / DESCRIPTOR_NAME}",
        *proto_files(),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for package in sorted({Path(name).parent for name in proto_files()}):
        (out_dir / package / "__init__.py").write_text(PACKAGE_INIT)


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen")
