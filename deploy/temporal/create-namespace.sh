#!/bin/sh
# One-shot job, run by the `temporal-create-namespace` service (temporalio/admin-tools image) once the server is up:
# create Handoff's namespace if it is missing, then register the custom search attributes every Handoff run sets.
#
# Why it matters: a search attribute that is not registered fails the workflow task ("BadSearchAttributes") and the
# run hangs, retrying. The workers depend on this job, so they start only after it succeeded.
#
# Idempotent: an existing namespace is kept (its retention is not changed: use `temporal operator namespace update`),
# and registering an attribute that already exists with the same type succeeds. An attribute that exists with
# another type fails the job loudly: rename it in the workflow instead of reusing the name.
set -eu

: "${TEMPORAL_ADDRESS:?set TEMPORAL_ADDRESS: host:port of the Temporal frontend}"  # read by the temporal CLI
NAMESPACE="${HANDOFF_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-720h}"
ATTEMPTS="${SETUP_MAX_ATTEMPTS:-60}"
PAUSE="${SETUP_SLEEP_SECONDS:-2}"

# Name:Type of every search attribute the Handoff workflow sets; keep in step with its search-attribute keys.
SEARCH_ATTRIBUTES="HandoffName:Keyword HandoffStage:Keyword HandoffOwnerGroup:Keyword HandoffContractHash:Keyword
HandoffContractVersion:Int HandoffCaseId:Keyword"

log() { echo "create-namespace: $*"; }

# retry WHAT COMMAND...: run COMMAND until it succeeds, at most $ATTEMPTS times.
retry() {
    what="$1"
    shift
    attempt=1
    until "$@"; do
        if [ "$attempt" -ge "$ATTEMPTS" ]; then
            log "gave up after $attempt attempts: $what" >&2
            return 1
        fi
        log "not yet ($attempt/$ATTEMPTS): $what; retrying in ${PAUSE}s"
        attempt=$((attempt + 1))
        sleep "$PAUSE"
    done
}

retry "Temporal at $TEMPORAL_ADDRESS reports SERVING" temporal operator cluster health

ensure_namespace() {
    if temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1; then
        log "namespace '$NAMESPACE' exists; keeping it"
    else
        log "creating namespace '$NAMESPACE' (retention $RETENTION)"
        temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" \
            --description "Handoff runs"
    fi
}
retry "namespace '$NAMESPACE' exists" ensure_namespace

# A new namespace takes a few seconds to reach every frontend's cache: the retries cover that.
# One call per attribute: temporal CLI 1.9 given several --name with one --type registers only the first name.
for pair in $SEARCH_ATTRIBUTES; do
    name="${pair%%:*}"
    type="${pair#*:}"
    retry "register search attribute $name ($type)" \
        temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$type"
done

temporal operator search-attribute list --namespace "$NAMESPACE"
log "namespace '$NAMESPACE' ready"
