# slogate operator image: `slogate run`, non-root, read-only root filesystem friendly.
# Build: docker build -t slogate:0.1.0 .   (CI here cannot build images; tests/integration/test_image.py
# installs the package the same way into a clean venv and runs the entrypoint against a real API server.)
# The image is the operator only: the model-server simulator (operator/slogate/sim) and the local
# control plane (operator/slogate/dev) are removed before the install, and no extra is installed
# (their one dependency beyond the operator's, cryptography, is in the `dev` extra). They come from a
# source checkout: pip install -e '.[dev]' (make install). In the image `slogate dev` and
# `slogate sim` exit 2 and say so; the operator never imports either package.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY operator/ operator/
# Dependencies pinned by constraints.txt; a plain (non-editable) install into its own venv, without
# the simulator and the local control plane.
RUN rm -rf operator/slogate/sim operator/slogate/dev \
 && python -m venv /opt/slogate \
 && /opt/slogate/bin/pip install --constraint constraints.txt . \
 && /opt/slogate/bin/pip uninstall --yes pip setuptools wheel

FROM python:3.11-slim-bookworm
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
