# lienthong-gateway: one process = HTTP API + outbox relay + consumers. Scale by running more.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LIENTHONG_DATA_DIR=/var/lib/lienthong
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY adapters ./adapters
COPY migrations ./migrations
COPY schemas ./schemas
# lxml and xmlsec wheels bundle the same libxml2; never build them from source.
RUN pip install --no-cache-dir --only-binary lxml,xmlsec . \
 && useradd --system --home /var/lib/lienthong lienthong \
 && mkdir -p /var/lib/lienthong && chown lienthong /var/lib/lienthong
USER lienthong
EXPOSE 8080
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["lienthong", "serve", "--host", "0.0.0.0", "--port", "8080"]
