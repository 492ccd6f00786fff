# syntax=docker/dockerfile:1
# One image for every Handoff process: `handoff worker` (the default), `handoff api`, `handoff migrate`, ...
#   docker build -t handoff:0.1.0 .
#   docker run --rm handoff:0.1.0 check
# The builder installs the project and its dependencies into a virtualenv; the runtime stage gets only that venv
# on a clean slim Python, without pip caches, sources or build tools. Every dependency ships binary wheels
# (psycopg[binary], pydantic-core, temporalio), so neither stage needs a compiler.

# Python minor and Debian release pinned; pin a digest (python:3.11-slim-bookworm@sha256:...) for byte-for-byte
# reproducible builds. The venv's interpreter path must be the same in both stages: keep one ARG for both.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml alone: this layer is reused until the dependencies change.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt

# Then the project itself (a regular, non-editable install: the sources stay behind in this stage).
COPY . .
# `handoff --help` proves the entry point imports; pip and setuptools are not needed at run time.
RUN pip install --no-deps . \
    && handoff --help > /dev/null \
    && pip uninstall --yes --quiet pip setuptools


FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HANDOFF_HOME=/app/.handoff

# A fixed non-root uid/gid, so volume permissions can be granted to it from outside.
RUN groupadd --system --gid 10001 handoff \
    && useradd --system --uid 10001 --gid handoff --home-dir /app --no-create-home --shell /usr/sbin/nologin handoff \
    && mkdir -p /app/.handoff \
    && chown -R handoff:handoff /app

COPY --from=builder /opt/venv /opt/venv
# The restaurant example, the default HANDOFF_APP of docker-compose.yml. A user's image is `FROM` this one plus
# their own package (`COPY myhandoffs /app/myhandoffs`, HANDOFF_APP=myhandoffs:app): apps import from /app.
COPY --chown=10001:10001 examples /app/examples

WORKDIR /app
# Numeric, so a platform can verify it is not root without reading /etc/passwd (Kubernetes runAsNonRoot).
USER 10001:10001

# 8000: `handoff api` (HANDOFF_API_PORT); 9464: Prometheus metrics of `handoff worker` (HANDOFF_METRICS_PORT).
EXPOSE 8000 9464

ENTRYPOINT ["handoff"]
CMD ["worker"]
