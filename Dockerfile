# Webhook notification scheduler: API + scheduler in one process.
#   docker build -t insignia-scheduler .
#   docker run -p 8080:8080 -e DATABASE_URL=postgresql://user:pass@host:5432/db insignia-scheduler

# -- build: install the pinned dependencies into a virtual environment ----------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt .
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements.txt

# -- runtime: the environment and the code, run as an unprivileged user --------------------------
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_FORMAT=json \
    DATABASE_URL=sqlite:////data/insignia.db
RUN groupadd --system app && useradd --system --gid app --home-dir /app app \
    && mkdir /data && chown app:app /data
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY main.py alembic.ini ./
COPY app ./app
USER app
EXPOSE 8080
VOLUME ["/data"]
# Kubernetes and Cloud Run use their own probes (/livez, /readyz); this one is for plain Docker.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['PORT']}/livez\", timeout=2)"]
STOPSIGNAL SIGTERM
# Applies the database migrations, then serves the API and runs the scheduler on $PORT.
CMD ["python", "main.py"]
