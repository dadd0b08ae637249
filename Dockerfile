# syntax=docker/dockerfile:1
# arkgate: a small, non-root image built from the locked dependencies (uv.lock) with uv.
#   docker build -t arkgate .
#   docker run -p 8080:8080 -e ARKGATE_BARKD_URL=... -v arkgate-data:/data arkgate
# All extras are installed; screenshots also need Chromium, which this image leaves out (the endpoint is
# then listed as unavailable and answers 503 at no cost).

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --all-extras --no-install-project
COPY README.md ./
COPY arkgate ./arkgate
RUN uv sync --frozen --no-dev --all-extras --no-editable

FROM python:${PYTHON_VERSION}-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home arkgate \
    && install -d -o arkgate -g arkgate -m 0700 /data
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ARKGATE_HOST=0.0.0.0 \
    ARKGATE_PORT=8080 \
    ARKGATE_DATA_DIR=/data \
    ARKGATE_LOG_JSON=true
USER arkgate
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('ARKGATE_PORT', '8080') + '/health/live', timeout=4)"]
CMD ["arkgate", "serve"]
