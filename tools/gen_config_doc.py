"""Writes docs/configuration.md from billing.settings.VARIABLES, the one declaration of every environment
variable (`make gen`); tests/unit/test_configuration_doc.py fails when the committed file is stale."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from billing.settings import GROUPS, VARIABLES, Variable  # noqa: E402

DOC = ROOT / "docs" / "configuration.md"
HEADER = """# Configuration

Generated from `src/billing/environment_variables.py` (the `VARIABLES` table) by `tools/gen_config_doc.py` (`make gen`);
do not edit by hand. Every setting is an environment variable, read once when a process starts. "Local" marks
a variable read only by the local tooling (`billing run`, the Stripe stand-in, the demo app, the embedded
PostgreSQL) or meant for local and test use only; a deployed service does not read it.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _row(variable: Variable) -> str:
    local = "local" if variable.local_only else ""
    return (f"| `{variable.name}` | {_cell(variable.kind)} | {_cell(variable.documented_default)} | {local} "
            f"| {_cell(variable.meaning)} |")


def render() -> str:
    sections = [HEADER]
    for group in GROUPS:
        rows = [_row(v) for v in VARIABLES if v.group == group]
        sections.append("\n".join([f"## {group}", "", "| Variable | Kind | Default | Local | Meaning |",
                                   "|---|---|---|---|---|", *rows]) + "\n")
    return "\n".join(sections)


def main() -> None:
    DOC.write_text(render())


if __name__ == "__main__":
    main()
