"""`SCHEMA_HEAD` (which lets a server skip importing Alembic) is Alembic's own head."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from clicktrail.storage.database import (
    SCHEMA_HEAD,
    alembic_config,
    create_engine,
    migrate,
    schema_version,
)


def test_schema_head_is_alembics_head(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        script = ScriptDirectory.from_config(alembic_config(engine))
        assert script.get_heads() == [SCHEMA_HEAD]
        assert schema_version(engine) is None
        migrate(engine)
        assert schema_version(engine) == SCHEMA_HEAD
        command.downgrade(alembic_config(engine), "0010")  # an older database is still upgraded
        assert not sa.inspect(engine).has_table("click_inbox")
        migrate(engine)
        assert schema_version(engine) == SCHEMA_HEAD
        assert sa.inspect(engine).has_table("click_inbox")
    finally:
        engine.dispose()
