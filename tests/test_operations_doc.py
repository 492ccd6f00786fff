"""docs/operations.md cannot drift from the code: its settings table is generated from workers/settings.py, and every
variable docker-compose.yml reads is documented.

Regenerate the settings table after changing a setting:  .venv/bin/python tests/test_operations_doc.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo

from handoff.workers.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "operations.md"
COMPOSE_FILE = ROOT / "docker-compose.yml"
BEGIN = "<!-- settings-table:begin (generated from workers/settings.py: python tests/test_operations_doc.py) -->"
END = "<!-- settings-table:end -->"


def _default(field: FieldInfo) -> str:
    value: Any = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def settings_table() -> str:
    """The markdown table of every setting: environment variable, default, description (the field's own)."""
    rows = ["| Variable | Default | What it does |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        # Escaped for markdown: a pipe would end the cell, and `<home>` would vanish as an HTML tag.
        description = (field.description or "").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        rows.append(f"| `HANDOFF_{name.upper()}` | {_default(field)} | {description} |")
    return "\n".join(rows)


def documented_table(text: str) -> str:
    """The table between the markers in docs/operations.md."""
    assert BEGIN in text and END in text, f"{DOC} lost its settings-table markers"
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def test_settings_table_is_generated_from_the_settings() -> None:
    """The settings table is exactly what workers/settings.py says; run `python tests/test_operations_doc.py` to fix."""
    assert settings_table() == documented_table(DOC.read_text())


def test_every_compose_variable_is_documented() -> None:
    """Every ${VARIABLE} docker-compose.yml reads is named in docs/operations.md."""
    variables = sorted(set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text())))
    text = DOC.read_text()

    missing = [name for name in variables if f"`{name}`" not in text]

    assert [] == missing


def _write_table() -> None:
    text = DOC.read_text()
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    DOC.write_text(f"{before}{BEGIN}\n{settings_table()}\n{END}{after}")
    print(f"wrote the settings table in {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    _write_table()
    sys.exit(0)
