# The dep-assets user-code image: a Dagster gRPC code server, as in Dagster's deployment guides.
# The webserver and daemon run from the stock dagster images (or `dagster dev` for a single host) and
# load this code location over gRPC on port 4000.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DEP_ARCHIVE_PATH=/opt/dagster/data/dep_archive.duckdb

WORKDIR /opt/dagster/app

COPY pyproject.toml README.md LICENSE ./
COPY dep_assets ./dep_assets
# A C compiler only for the install: the compiled paths of normalization and STIX mapping (optional in
# pyproject, so without it the install would quietly fall back to the slower Python reference, a
# replay ~25% slower; the check below refuses that).
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && pip install --upgrade pip && pip install . \
 && python -c "from dep_assets.transform import compiled_paths as c; assert all(c().values()), c()" \
 && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

# The archive lives on a volume: mount it at /opt/dagster/data.
RUN mkdir -p /opt/dagster/data
VOLUME ["/opt/dagster/data"]

EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s \
  CMD dagster api grpc-health-check -p 4000 || exit 1

CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "dep_assets.definitions"]
