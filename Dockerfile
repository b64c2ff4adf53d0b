# Engage service image: the locked dependencies, run as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir "uv>=0.9" \
    && useradd --create-home --uid 10001 engage

WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project

COPY service ./service
COPY frontend-api-spec ./frontend-api-spec
RUN uv sync --locked --no-dev && chown -R engage:engage /app

USER engage
ENV PATH="/app/.venv/bin:$PATH" \
    ENGAGE_DATA_DIR=/app/.engage
EXPOSE 8000

# The container always gets ENGAGE_DATABASE_URL and ENGAGE_REDIS_URL (see compose.yaml); the
# embedded servers are for laptops, not images.
CMD ["engage", "serve", "--host", "0.0.0.0", "--port", "8000"]
