"""Applies Alembic migrations programmatically (server start, `make migrate`, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

ALEMBIC_INI = Path(__file__).resolve().parents[4] / "alembic.ini"


def upgrade_to_head(database_url: str) -> None:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(Path(__file__).resolve().parent / "migrations"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")
