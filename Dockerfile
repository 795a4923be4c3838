# syntax=docker/dockerfile:1
# The azure-jit-operator image: the operator package and its dependencies only (the Azure
# emulator and the developer tooling are other workspace members, left out). Build from the
# repository root:
#   docker build -t azure-jit-operator:dev .
#
# Two stages: `build` resolves the locked dependencies (uv.lock) into a virtualenv with uv;
# `runtime` gets only that virtualenv on a fresh slim Python, runs as a numeric non-root user and
# has no package manager run in it, no compiler and no uv.
# The base image is pinned by version tag; pin its digest as well where your registry policy
# requires it (FROM python:3.11.14-slim-bookworm@sha256:...). Rules enforced by
# tests/unit/test_dockerfile_follows_the_rules.py.
#
# `make image` builds the same file without a registry or a Docker daemon (hack/image/build.sh):
# on a Python base made from Debian's packages, passed as PYTHON_IMAGE, whose interpreter is
# Debian's /usr/bin/python3 (PYTHON).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
# The base image's interpreter: the official images' /usr/local/bin/python.
ARG PYTHON=/usr/local/bin/python

FROM ${PYTHON_IMAGE} AS build
ARG PYTHON
# The same uv as the Makefile (UV_VERSION); installed in this stage only. Debian's own python3
# marks its site-packages as externally managed (PEP 668); this stage is thrown away, so uv
# goes there all the same (on the official image the flag changes nothing).
RUN ${PYTHON} -m pip install --no-cache-dir --disable-pip-version-check --break-system-packages \
      uv==0.13.9
# UV_SYSTEM_CERTS: uv trusts the image's CA store (as pip does), so a build behind a
# TLS-inspecting proxy works by mounting the build machine's bundle over it for the RUN steps.
ENV UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_SYSTEM_CERTS=1
WORKDIR /src
# Dependencies first (their layer survives source changes), exactly as locked: --frozen never
# re-resolves, --no-default-groups --no-dev leave out the test and dev groups, and
# --package azure-jit-operator takes the operator's dependencies only. uv reads every workspace
# member's pyproject.toml to load the workspace, so those come in (metadata only, no code).
COPY pyproject.toml uv.lock README.md ./
COPY emulator/pyproject.toml ./emulator/
COPY devtools/pyproject.toml ./devtools/
RUN uv sync --frozen --no-default-groups --no-dev --package azure-jit-operator --no-install-project \
      --python ${PYTHON}
# Then the operator itself, installed into the virtualenv as a regular (non-editable) package.
COPY operator/ ./operator/
# Given the last commit's time (make image passes it), the project's own files are the same
# bytes on every build: hatchling dates the wheel's entries with it and Python writes
# hash-checked .pyc files; uv's note of when it installed the project goes (from
# RECORD too).
ARG SOURCE_DATE_EPOCH
RUN uv sync --frozen --no-default-groups --no-dev --package azure-jit-operator --no-editable \
      --python ${PYTHON} \
 && cd /app/.venv/lib/python*/site-packages/azure_jit_operator-*.dist-info \
 && rm uv_cache.json && sed -i '/\/uv_cache\.json,/d' RECORD

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="azure-jit-operator" \
      org.opencontainers.image.description="Kubernetes operator for Azure Just-in-Time VM access" \
      org.opencontainers.image.licenses="Apache-2.0"
# A named account for uid 65532 (the Deployment's runAsUser), so tools that look the user up
# (getpass, kopf's peer id outside Kubernetes) find one. No home, no shell.
RUN groupadd --system --gid 65532 azure-jit \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin azure-jit
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# /metrics, /healthz and /readyz (AZURE_JIT_METRICS_PORT; the pod sets AZURE_JIT_BIND_ADDRESS).
EXPOSE 9090
# Health is checked by the Kubernetes liveness (/healthz) and readiness (/readyz) probes in
# deploy/base/deployment.yaml; Kubernetes ignores HEALTHCHECK.
HEALTHCHECK NONE
STOPSIGNAL SIGTERM
ENTRYPOINT ["azure-jit-operator"]
CMD ["run"]
