# slogate operator image: `slogate run`, non-root, read-only root filesystem friendly.
# Build: docker build -t slogate:0.1.0 .            (the official python:3.11-slim-bookworm base)
#        make image  (= hack/build-image.sh, podman) (CI and our machines: a local Debian bookworm base
#        made by hack/build-base-image.sh, passed as BASE_IMAGE and named as such in the labels;
#        docs/image.md says what differs from the official base)
# tests/integration/test_container.py runs the built image in-cluster against the local control plane.
# The image is the operator only: the model-server simulator (operator/slogate/sim) and the local
# control plane (operator/slogate/dev) are removed before the install, and no extra is installed
# (their one dependency beyond the operator's, cryptography, is in the `dev` extra). They come from a
# source checkout: pip install -e '.[dev]' (make install). In the image `slogate dev` and
# `slogate sim` exit 2 and say so; the operator never imports either package.

# Any image with python3.11 (and its venv module) as `python` on PATH and `useradd`.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# CA certificates for the build's pip when the package index is reached through a TLS-intercepting
# proxy: hack/build-image.sh mounts the host's bundle for the build only. Unset: pip's own (certifi).
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator/ operator/
# Dependencies pinned by constraints.txt; a plain (non-editable) install into its own venv, without
# the simulator and the local control plane.
RUN rm -rf operator/slogate/sim operator/slogate/dev \
 && python -m venv /opt/slogate \
 && /opt/slogate/bin/pip install --constraint constraints.txt . \
 && /opt/slogate/bin/pip uninstall --yes pip setuptools wheel

FROM ${BASE_IMAGE}
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin slogate
COPY --from=build /opt/slogate /opt/slogate
COPY crds/ /opt/slogate/crds/
ENV PATH=/opt/slogate/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SLOGATE_LOG_FORMAT=json
USER 10001:10001
# 8080: /metrics, 8081: /healthz (liveness and readiness probes in the Helm chart)
EXPOSE 8080 8081
ENTRYPOINT ["slogate", "run"]
# Last, so a new commit rebuilds no layer above. hack/build-image.sh passes the version (pyproject.toml)
# and the git commit; the base's name is recorded as given, never as the official one it stands in for.
ARG BASE_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="slogate" \
      org.opencontainers.image.description="slogate operator: SLO-gated rollouts of LLM serving (ModelDeployment)" \
      org.opencontainers.image.source="https://github.com/slogate/slogate" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
