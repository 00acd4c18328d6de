"""gen/ and clients/typescript/src/generated/ are committed; they must always be what protos/ generate today."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from tools.gen_protos import ROOT, TS_OUT, generate, generate_typescript


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _stale(fresh: Path, committed: Path) -> list[str]:
    assert _files(fresh) == _files(committed), f"run `make gen`: the files of {committed.relative_to(ROOT)} differ"
    return sorted(name for name in _files(fresh) if not filecmp.cmp(fresh / name, committed / name, shallow=False))


def test_generated_code_matches_protos(tmp_path):
    generate(tmp_path)
    assert _stale(tmp_path, ROOT / "gen") == [], "gen/ is stale against protos/ (run `make gen`)"


def test_generated_typescript_matches_protos(tmp_path):
    generate_typescript(tmp_path / "ts")
    assert _stale(tmp_path / "ts", TS_OUT) == [], "clients/typescript/src/generated/ is stale (run `make gen`)"


def test_typescript_generation_replaces_what_was_there(tmp_path):
    out = tmp_path / "ts"
    (out / "billing" / "v0").mkdir(parents=True)
    (out / "billing" / "v0" / "gone.ts").write_text("export interface Gone {}\n")
    generate_typescript(out)
    assert "billing/v0/gone.ts" not in _files(out)
    assert {"billing/v1/balance.ts", "google/api/httpbody.ts", "google/protobuf/any.ts"} <= _files(out)
    assert "google/protobuf/descriptor.ts" not in _files(out), "only the imports the generated types refer to"


def test_protos_pass_buf_lint():
    buf = Path(sys.executable).parent / "buf"
    result = subprocess.run([str(buf), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
