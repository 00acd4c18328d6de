"""gen/ is committed; it must always be what protos/ generate today."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from tools.gen_protos import ROOT, generate


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_generated_code_matches_protos(tmp_path):
    generate(tmp_path)
    committed = ROOT / "gen"
    assert _files(tmp_path) == _files(committed), "run `make gen`: files differ"
    stale = [name for name in _files(tmp_path) if not filecmp.cmp(tmp_path / name, committed / name, shallow=False)]
    assert stale == [], f"gen/ is stale against protos/ (run `make gen`): {stale}"


def test_protos_pass_buf_lint():
    buf = Path(sys.executable).parent / "buf"
    result = subprocess.run([str(buf), "lint"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
