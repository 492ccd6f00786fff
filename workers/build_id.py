"""A worker's build id, named from the code that decides its runs' histories.

Temporal records the build id of the worker that completed each workflow task (the UI shows it; a reset can pick
the first task a build completed). Given none, temporalio hashes the bytecode of every module the process has
loaded: about 0.2 s of each worker's start here, an eighth of it (`bench/README.md`, worker start). Handoff's
plugin names the build from what decides a run's commands instead: the SDK's version, the source of Handoff's
workflows and schemas, the module of every other workflow the worker runs, and the contracts it serves, each
version by its content hash. Activities (adapters, look-ups, the ledger) are left out: their code does not change
which commands a workflow sends. A worker given its own build id, or a deployment config, keeps it.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import temporalio

from handoff import schemas, workflows
from handoff.schemas.contract import HandoffContract

HANDOFF_SOURCES = (Path(workflows.__file__).parent, Path(schemas.__file__).parent)
"""The packages whose code runs in (or shapes) Handoff's workflows."""


def build_id(workflow_classes: Sequence[type], contracts: Iterable[HandoffContract]) -> str:
    """`handoff-` and a digest that changes when the workflows' code, the SDK or a served contract does."""
    sources = {path for package in HANDOFF_SOURCES for path in package.rglob("*.py")}
    sources |= {Path(file) for cls in workflow_classes if (file := _module_file(cls))}
    digest = hashlib.sha256(f"temporalio {temporalio.__version__}\n".encode())
    for path in sorted(sources):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for hash_ in sorted(f"{c.name} v{c.version} {c.content_hash()}" for c in contracts):
        digest.update(hash_.encode())
    return f"handoff-{digest.hexdigest()[:24]}"


def _module_file(cls: type) -> str | None:
    """The file of the module that defines `cls`; None for one defined where no file is (`__main__` of `-c`)."""
    return getattr(sys.modules.get(cls.__module__), "__file__", None)
