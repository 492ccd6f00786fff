"""A worker does not import the web stack: the plugin, the worker and the notifiers leave FastAPI, Starlette, Jinja
and uvicorn to the API process, so a worker starts sooner and holds less (`bench/README.md`, worker start)."""

from __future__ import annotations

import json
import subprocess
import sys

WEB_STACK = ("fastapi", "starlette", "jinja2", "uvicorn")


def test_the_plugin_and_the_worker_import_no_web_framework() -> None:
    probe = (
        "import json, sys; import handoff.workers.plugin, handoff.workers.worker, handoff.workers.notifiers; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(WEB_STACK)!r}))))"
    )
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    assert [] == json.loads(imported.stdout)


def test_the_probe_would_see_the_web_stack() -> None:
    """The same probe finds FastAPI once the API is imported: the test above could fail."""
    probe = "import json, sys; import handoff.workers.api; print(json.dumps('fastapi' in sys.modules))"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)

    assert json.loads(imported.stdout) is True
