"""The schema check reads the migration graph without Alembic: it must agree with Alembic's."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from core.db.migrate import SCHEMA_HEAD, alembic_config, alembic_head, known_revisions


def test_static_head_and_revisions_are_alembics() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert SCHEMA_HEAD == alembic_head() == script.get_current_head()
    assert known_revisions() == {s.revision: s.down_revision for s in script.walk_revisions()}


def test_the_schema_check_does_not_import_alembic() -> None:
    import subprocess
    import sys

    code = "import sys, core.db; print(any(m.split('.')[0] == 'alembic' for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
