"""The custom search attributes Handoff sets on every run, so runs can be listed by handoff, stage and owner.

Every one must be registered on the server before a run upserts it (an unregistered attribute fails the workflow
task and the run hangs retrying): `handoff server` and docker-compose's namespace job register `ALL`.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

HANDOFF_NAME = SearchAttributeKey.for_keyword("HandoffName")
HANDOFF_STAGE = SearchAttributeKey.for_keyword("HandoffStage")
OWNER_GROUP = SearchAttributeKey.for_keyword("HandoffOwnerGroup")
CASE_ID = SearchAttributeKey.for_keyword("HandoffCaseId")
CONTRACT_HASH = SearchAttributeKey.for_keyword("HandoffContractHash")
CONTRACT_VERSION = SearchAttributeKey.for_int("HandoffContractVersion")

ALL = (HANDOFF_NAME, HANDOFF_STAGE, OWNER_GROUP, CASE_ID, CONTRACT_HASH, CONTRACT_VERSION)
