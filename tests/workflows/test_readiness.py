"""The readiness gate: each unanswered question, unknown name and conflict is found, named and explained.

Each test breaks one part of a READY contract and asserts the exact findings as (kind, contract, subject).
Contradictions between rules are tested in test_contradictions.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from examples.restaurant import app as restaurant
from handoff.schemas.contract import (
    Catalog,
    DecisionKind,
    ExceptionPolicy,
    Gain,
    Measure,
    Schedule,
    Sync,
    SyncTarget,
    Trigger,
)
from handoff.schemas.findings import FindingKind, Registries
from handoff.schemas.rules import Compare, Forbidden, Lookup, Max, Min, Pattern, Required, When
from handoff.schemas.systems import TargetField
from handoff.workflows.readiness import check_catalog, check_contract
from tests.workflows.sample_contracts import NAME, BookingConfirmed, check, found, ready_contract

POS = frozenset({"pos"})


def test_the_sample_contract_is_ready() -> None:
    """The contract every test breaks passes the gate as it is."""
    readiness = check(ready_contract())

    assert [] == found(readiness)
    assert readiness.ready


def test_the_example_app_is_ready() -> None:
    """Every handoff of the restaurant example is READY, with what the app registers."""
    readiness = restaurant.readiness()

    expected = [(contract.name, True, []) for contract in restaurant.catalog.contracts]
    assert expected == [(c.contract, c.ready, c.findings) for c in readiness.contracts]


def test_readiness_carries_name_version_and_content_hash() -> None:
    """Each verdict names its contract, version and content hash, as a run would be stamped."""
    contract = ready_contract(version=3)

    readiness = check(contract).contracts[0]

    assert (NAME, 3, contract.content_hash()) == (readiness.contract, readiness.version, readiness.content_hash)


# Question 1: the trigger and its dedupe key.


def test_no_trigger() -> None:
    """A contract without a trigger is not ready: nothing says which event starts it."""
    assert [(FindingKind.NO_TRIGGER, NAME, "trigger")] == found(check(ready_contract(trigger=None)))


def test_no_dedupe_key() -> None:
    """A trigger without a dedupe key is not ready: a repeated event would start a second run."""
    trigger = Trigger(event="booking.confirmed", payload=BookingConfirmed)

    assert [(FindingKind.NO_DEDUPE_KEY, NAME, "trigger.dedupe_key")] == found(check(ready_contract(trigger=trigger)))


def test_dedupe_key_the_payload_does_not_have() -> None:
    """A dedupe key that is not a payload field answers nothing."""
    trigger = Trigger(event="booking.confirmed", payload=BookingConfirmed, dedupe_key="booking.number")

    assert [(FindingKind.NO_DEDUPE_KEY, NAME, "booking.number")] == found(check(ready_contract(trigger=trigger)))


def test_dedupe_key_that_may_be_missing() -> None:
    """An optional dedupe key would make every event without it share one run."""
    trigger = Trigger(event="booking.confirmed", payload=BookingConfirmed, dedupe_key="booking.ref")

    assert [(FindingKind.NO_DEDUPE_KEY, NAME, "booking.ref")] == found(check(ready_contract(trigger=trigger)))


def test_dedupe_key_that_is_a_list() -> None:
    """A list does not name one event, so it is no dedupe key."""
    trigger = Trigger(event="booking.confirmed", payload=BookingConfirmed, dedupe_key="booking.lines")

    assert [(FindingKind.NO_DEDUPE_KEY, NAME, "booking.lines")] == found(check(ready_contract(trigger=trigger)))


# Question 2: who owns each entity.


def test_entity_without_owner() -> None:
    """Every entity of the payload needs an owning system, synced or not."""
    contract = ready_contract(source_of_truth={"booking": "bookings"}, sync=Sync(targets=(_pos("booking.id"),)))

    assert [(FindingKind.ENTITY_WITHOUT_OWNER, NAME, "guest")] == found(check(contract))


def test_synced_field_of_an_entity_without_owner() -> None:
    """A synced field whose entity has no owner is named too: a wrong value there has nowhere to be fixed."""
    contract = ready_contract(source_of_truth={"booking": "bookings"})

    expected = [
        (FindingKind.ENTITY_WITHOUT_OWNER, NAME, "guest"),
        (FindingKind.SYNCED_FIELD_WITHOUT_OWNER, NAME, "guest.name"),
    ]
    assert expected == found(check(contract))


def test_synced_top_level_field_has_no_owner() -> None:
    """A top-level field that is not an entity cannot be owned, so syncing it leaves the question open."""
    contract = ready_contract(sync=Sync(targets=(_pos("booking.id", "note"),)))

    assert [(FindingKind.SYNCED_FIELD_WITHOUT_OWNER, NAME, "note")] == found(check(contract))


def test_conflicting_sources_of_truth_across_contracts() -> None:
    """Two contracts naming different owners for one entity are both flagged, each naming the other."""
    first = ready_contract()
    second = ready_contract(name="guest-to-crm", source_of_truth={"booking": "bookings", "guest": "crm"})

    readiness = check(first, second)

    expected = [
        (FindingKind.CONFLICTING_SOURCE_OF_TRUTH, NAME, "guest"),
        (FindingKind.CONFLICTING_SOURCE_OF_TRUTH, "guest-to-crm", "guest"),
    ]
    assert expected == found(readiness)
    for finding in readiness.findings:
        assert all(word in finding.message for word in ("table-booking", "guest-to-crm", "'bookings'", "'crm'"))


def test_same_owner_in_two_contracts_is_no_conflict() -> None:
    """Contracts that agree on an entity's owner are fine together."""
    assert [] == found(check(ready_contract(), ready_contract(name="second-handoff")))


def test_sync_that_overwrites_the_source_of_truth() -> None:
    """Writing an entity's fields into the system that owns it overwrites the source of truth."""
    contract = ready_contract(
        sync=Sync(targets=(_pos("booking.id"), SyncTarget(system="bookings", fields=("guest.name",))))
    )

    assert [(FindingKind.SYNC_OVERWRITES_SOURCE, NAME, "guest.name")] == found(check(contract))


# Questions 3 to 6.


def test_no_sync() -> None:
    """A contract that syncs nothing does not say which fields go where."""
    assert [(FindingKind.NO_SYNC, NAME, "sync")] == found(check(ready_contract(sync=None)))


def test_sync_without_targets() -> None:
    """A sync with local fields only moves nothing."""
    contract = ready_contract(sync=Sync(local=("guest.phone",)))

    assert [(FindingKind.NO_SYNC, NAME, "sync")] == found(check(contract))


def test_sync_target_without_fields() -> None:
    """A target system that receives no field is an unanswered question about that system."""
    contract = ready_contract(sync=Sync(targets=(_pos("booking.id"), SyncTarget(system="kitchen", fields=()))))

    assert [(FindingKind.NO_SYNC, NAME, "kitchen")] == found(check(contract))


def test_no_rules() -> None:
    """A contract without rules does not say what happens to bad data."""
    assert [(FindingKind.NO_RULES, NAME, "rules")] == found(check(ready_contract(rules=())))


def test_no_exception_policy() -> None:
    """A contract without an exception policy names nobody to decide cases."""
    assert [(FindingKind.NO_EXCEPTION_OWNER, NAME, "exceptions")] == found(check(ready_contract(exceptions=None)))


def test_exception_policy_without_owner() -> None:
    """An exception policy without an owner names nobody to decide first."""
    policy = ExceptionPolicy(escalation=("managers",), on_timeout=DecisionKind.REJECT)

    assert [(FindingKind.NO_EXCEPTION_OWNER, NAME, "exceptions.owner")] == found(
        check(ready_contract(exceptions=policy))
    )


def test_exception_policy_without_end_of_chain_decision() -> None:
    """Without an on_timeout decision a case could stay open after the whole chain let its SLA pass."""
    policy = ExceptionPolicy(owner="hosts", escalation=("managers",))

    expected = [(FindingKind.NO_TIMEOUT_DECISION, NAME, "exceptions.on_timeout")]
    assert expected == found(check(ready_contract(exceptions=policy)))


def test_correct_is_no_end_of_chain_decision() -> None:
    """'correct' needs someone to write the values, so it cannot be what happens when nobody answers."""
    policy = ExceptionPolicy(owner="hosts", on_timeout=DecisionKind.CORRECT, sla=timedelta(minutes=5))

    expected = [(FindingKind.NO_TIMEOUT_DECISION, NAME, "exceptions.on_timeout")]
    assert expected == found(check(ready_contract(exceptions=policy)))


def test_no_gain() -> None:
    """A contract without a gain does not say what it is for."""
    assert [(FindingKind.NO_GAIN_TARGET, NAME, "gain")] == found(check(ready_contract(gain=None)))


def test_gain_without_target() -> None:
    """A gain with a baseline and no target cannot be met or missed."""
    gain = Gain(metric="Time to a table", unit="seconds", measure=Measure.CYCLE_TIME, baseline=600)

    assert [(FindingKind.NO_GAIN_TARGET, NAME, "gain.target")] == found(check(ready_contract(gain=gain)))


def test_gain_target_not_below_baseline() -> None:
    """Lower is better for every measure, so a target at or above the baseline is no gain."""
    gain = Gain(metric="Cases per run", unit="percent", measure=Measure.EXCEPTION_RATE, baseline=10, target=10)

    assert [(FindingKind.NO_GAIN_TARGET, NAME, "gain.target")] == found(check(ready_contract(gain=gain)))


def test_a_contract_with_nothing_answered() -> None:
    """A bare contract gets one finding per unanswered question, in the order of the six questions."""
    bare = ready_contract(trigger=None, source_of_truth={}, sync=None, rules=(), exceptions=None, gain=None)

    expected = [
        (FindingKind.NO_TRIGGER, NAME, "trigger"),
        (FindingKind.NO_SYNC, NAME, "sync"),
        (FindingKind.NO_RULES, NAME, "rules"),
        (FindingKind.NO_EXCEPTION_OWNER, NAME, "exceptions"),
        (FindingKind.NO_GAIN_TARGET, NAME, "gain"),
    ]
    assert expected == found(check(bare))


# Names that must exist: fields, groups, checks, systems.


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"rules": (Required(field="booking.party", reason="r"),)}, id="rule"),
        pytest.param(
            {"rules": (Compare(left="booking.starts_at", op="<", right="booking.party", reason="r"),)}, id="compare"
        ),
        pytest.param({"rules": (Lookup(check="pos.ok", field="booking.party", reason="r"),)}, id="lookup"),
        pytest.param(
            {
                "rules": (
                    When(
                        condition=Required(field="booking.party", reason="c"),
                        then=Required(field="guest.name", reason="t"),
                        reason="r",
                    ),
                )
            },
            id="when-condition",
        ),
        pytest.param(
            {
                "rules": (
                    When(
                        condition=Required(field="guest.name", reason="c"),
                        then=Max(field="booking.party", value=3, reason="t"),
                        reason="r",
                    ),
                )
            },
            id="when-consequence",
        ),
        pytest.param({"sync": Sync(targets=(SyncTarget(system="pos", fields=("booking.party",)),))}, id="synced"),
        pytest.param(
            {"sync": Sync(targets=(SyncTarget(system="pos", fields=("booking.id",), rename={"booking.party": "x"}),))},
            id="rename",
        ),
        pytest.param(
            {"sync": Sync(targets=(SyncTarget(system="pos", fields=("booking.id",)),), local=("booking.party",))},
            id="local",
        ),
    ],
)
def test_unknown_field(changes: dict[str, object]) -> None:
    """A path the payload model does not have is named, wherever the contract uses it."""
    assert [(FindingKind.UNKNOWN_FIELD, NAME, "booking.party")] == found(check(ready_contract(**changes)))


def test_unknown_field_in_a_nested_model() -> None:
    """Nested models are walked: guest.address.city exists, guest.address.town does not."""
    rules = (Required(field="guest.address.city", reason="r"), Required(field="guest.address.town", reason="r"))

    assert [(FindingKind.UNKNOWN_FIELD, NAME, "guest.address.town")] == found(check(ready_contract(rules=rules)))


def test_a_list_of_models_is_a_leaf() -> None:
    """A list field is a leaf: the paths inside its items are not payload fields."""
    rules = (Required(field="booking.lines", reason="r"), Required(field="booking.lines.dish", reason="r"))

    assert [(FindingKind.UNKNOWN_FIELD, NAME, "booking.lines.dish")] == found(check(ready_contract(rules=rules)))


def test_source_of_truth_for_an_entity_the_payload_lacks() -> None:
    """An owner named for an entity the payload does not carry is a stale or misspelt entry."""
    contract = ready_contract(source_of_truth={"booking": "bookings", "guest": "bookings", "guests": "crm"})

    assert [(FindingKind.UNKNOWN_FIELD, NAME, "guests")] == found(check(contract))


def test_unknown_field_is_reported_once_with_every_place() -> None:
    """A misspelt path used twice is one finding whose message lists both places."""
    rules = (Required(field="guest.nam", reason="r"), Max(field="guest.nam", value=3, reason="r"))
    contract = ready_contract(rules=rules, sync=Sync(targets=(_pos("booking.id", "guest.nam"),)))

    readiness = check(contract)

    assert [(FindingKind.UNKNOWN_FIELD, NAME, "guest.nam")] == found(readiness)
    message = readiness.findings[0].message
    assert all(
        place in message for place in ("guest.nam is required", "guest.nam <= 3", "sync to 'pos'", "'guest.name'")
    )


def test_escalation_loop() -> None:
    """A group that appears twice in owner + escalation would get back a case it already let lapse."""
    policy = ExceptionPolicy(owner="hosts", escalation=("managers", "hosts"), on_timeout=DecisionKind.REJECT)

    assert [(FindingKind.ESCALATION_LOOP, NAME, "hosts")] == found(check(ready_contract(exceptions=policy)))


def test_undeclared_groups() -> None:
    """An owner or escalation group the catalog does not declare has nobody to decide."""
    policy = ExceptionPolicy(owner="host", escalation=("managers", "owners"), on_timeout=DecisionKind.REJECT)

    expected = [(FindingKind.UNDECLARED_GROUP, NAME, "host"), (FindingKind.UNDECLARED_GROUP, NAME, "owners")]
    assert expected == found(check(ready_contract(exceptions=policy)))


def test_check_contract_alone_skips_group_names_unless_given() -> None:
    """check_contract cannot know the catalog's groups unless told, and says nothing about them then."""
    policy = ExceptionPolicy(owner="host", on_timeout=DecisionKind.REJECT)
    contract = ready_contract(exceptions=policy)

    assert [] == found(check_contract(contract))
    expected = [(FindingKind.UNDECLARED_GROUP, NAME, "host")]
    assert expected == found(check_contract(contract, declared_groups=frozenset({"hosts"})))


def test_unknown_lookup_check() -> None:
    """With the known checks given, a Lookup (inside a When too) naming another check is flagged."""
    rules = (
        Lookup(check="pos.table_exists", field="booking.table", reason="r"),
        When(
            condition=Required(field="booking.table", reason="c"),
            then=Lookup(check="pos.table_is_free", field="booking.table", reason="t"),
            reason="r",
        ),
    )
    registries = Registries(lookups=frozenset({"pos.table_exists"}), sources=frozenset({"bookings"}), targets=POS)
    readiness = check(ready_contract(rules=rules), registries=registries)

    assert [(FindingKind.UNKNOWN_LOOKUP, NAME, "pos.table_is_free(booking.table)")] == found(readiness)
    assert "@app.lookup('pos.table_is_free')" in readiness.findings[0].message


def test_lookups_are_not_judged_without_registries() -> None:
    """Without the registry of checks, no Lookup is called unknown."""
    rules = (Lookup(check="anything.at_all", field="booking.table", reason="r"),)

    assert [] == found(check(ready_contract(rules=rules)))


def test_unknown_systems() -> None:
    """With the registries given, owners and sync targets naming another system are flagged once each."""
    readiness = check(ready_contract(), registries=Registries(targets=POS))

    assert [(FindingKind.UNKNOWN_SYSTEM, NAME, "bookings")] == found(readiness)


def test_known_systems_pass() -> None:
    """Systems that all exist raise nothing: a source needs no adapter, a target has one."""
    assert [] == found(check(ready_contract(), registries=Registries(sources=frozenset({"bookings"}), targets=POS)))


def test_a_target_registered_only_as_a_source_has_no_adapter() -> None:
    """A sync target the app knows as a source only: nothing could write to it."""
    readiness = check(ready_contract(), registries=Registries(sources=frozenset({"bookings", "pos"})))

    assert [(FindingKind.TARGET_WITHOUT_ADAPTER, NAME, "pos")] == found(readiness)
    assert "app.system('pos', adapter)" in readiness.findings[0].message


def test_unknown_transform() -> None:
    """A transform the sync applies that the app does not register is flagged, with a close name suggested."""
    sync = Sync(targets=(SyncTarget(system="pos", fields=("booking.id",), transforms={"booking.id": "upper_case"}),))
    registries = Registries(sources=frozenset({"bookings"}), targets=POS, transforms=frozenset({"uppercase"}))

    readiness = check(ready_contract(sync=sync), registries=registries)

    assert [(FindingKind.UNKNOWN_TRANSFORM, NAME, "pos / booking.id")] == found(readiness)
    assert "did you mean 'uppercase'?" in readiness.findings[0].message


def test_registered_transforms_pass() -> None:
    sync = Sync(targets=(SyncTarget(system="pos", fields=("booking.id",), transforms={"booking.id": "uppercase"}),))
    registries = Registries(sources=frozenset({"bookings"}), targets=POS, transforms=frozenset({"uppercase"}))

    assert [] == found(check(ready_contract(sync=sync), registries=registries))


def test_every_message_names_its_contract_and_subject() -> None:
    """Every kind of finding comes with a sentence naming the contract and what it is about."""
    broken = ready_contract(
        trigger=Trigger(event="booking.confirmed", payload=BookingConfirmed),
        source_of_truth={"booking": "pos"},
        rules=(
            Required(field="guest.nam", reason="r"),
            Max(field="booking.party_size", value=-1, reason="r"),
            Min(field="booking.party_size", value=1, name="at-least-one", reason="r"),
            Pattern(field="booking.deposit", regex=r"\d+", reason="r"),
            Compare(left="booking.starts_at", op="<", right="booking.ends_at", reason="r"),
            Compare(left="booking.ends_at", op="<", right="booking.starts_at", reason="r"),
            Forbidden(field="guest.name", reason="r"),
            When(
                condition=Required(field="booking.table", reason="c"),
                then=Required(field="guest.name", reason="t"),
                name="tables-are-named",
                reason="r",
            ),
            Lookup(check="pos.table_exists", field="booking.table", reason="r"),
        ),
        exceptions=ExceptionPolicy(owner="nobody", escalation=("nobody",)),
        gain=Gain(metric="m", unit="s", measure=Measure.CYCLE_TIME, baseline=1),
    )
    bare = ready_contract(name="bare", trigger=None, sync=None, rules=(), exceptions=None)
    unregistered = ready_contract(
        name="unregistered",
        source_of_truth={"booking": "bookings", "guest": "crm"},
        sync=Sync(targets=(SyncTarget(system="bookings", fields=("booking.id",), transforms={"booking.id": "nope"}),)),
    )
    scheduled = ready_contract(  # a cron Temporal cannot read, from a function nobody registered
        name="scheduled",
        trigger=Trigger(
            event="booking.confirmed",
            payload=BookingConfirmed,
            dedupe_key="booking.id",
            schedule=Schedule(cron="61 * * * *", source="nope"),
        ),
    )
    undoing = ready_contract(  # an undo in a sync that is not ordered, naming a method the POS adapter lacks
        name="undoing", sync=Sync(targets=(SyncTarget(system="pos", fields=("booking.id",), undo="cancel"),))
    )
    catalog = Catalog(contracts=(broken, ready_contract(name="other"), bare, unregistered, scheduled, undoing))

    readiness = check_catalog(
        catalog,
        registries=Registries(
            sources=frozenset({"bookings"}),
            targets=POS,
            methods={"pos": frozenset({"write"})},
            accepts={  # what `broken` syncs to the POS: one field too short, one of another kind, one missing
                "pos": {"booking_ref": TargetField.text(max_length=5), "booking_party_size": TargetField.boolean()}
            },
        ),
        locked={("other", 1): "the hash of an earlier text"},
    )

    kinds = {finding.kind for finding in readiness.findings}
    assert set(FindingKind) == kinds
    for finding in readiness.findings:
        assert finding.contract in finding.message
        assert all(part in finding.message for part in finding.subject.split(" / ")), finding
        assert finding.message.rstrip().endswith((".", "?")), finding


def _pos(*fields: str) -> SyncTarget:
    return SyncTarget(system="pos", fields=fields)
