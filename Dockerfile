# syntax=docker/dockerfile:1
# infogan-explorer images. One file, three targets; every install reads the files under requirements/ (the same ones
# `make install` and the tests use), so no dependency is listed twice.
#
#   cpu   (default)  the service on plain onnxruntime           docker build -t infogan-explorer:cpu .
#   gpu              the service on onnxruntime-gpu, CUDA base   docker build --target gpu -t infogan-explorer:gpu .
#   train            `infogan train` + export, with torch        docker build --target train -t infogan-explorer:train .
#
# The service images hold backend/, frontend/ and the shipped models/ under /app; MODELS_DIR=/app/models, and a
# volume mounted there replaces the shipped models with others. No torch, and never both ONNX Runtime packages.

ARG PYTHON_IMAGE=python:3.11-slim
# onnxruntime-gpu below 1.27 (requirements/ort-gpu.txt) is built for CUDA 12 and cuDNN 9, which this base provides
# (its Python is 3.12); 1.27 and later need CUDA 13.
ARG CUDA_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04

# ---------------------------------------------------------------------------------------------------------------
# Training: torch and the training package. PyPI's Linux torch wheel carries its own CUDA libraries, so this image
# trains on a GPU when one is reserved (docker-compose.gpu.yml) and on the CPU otherwise. For a CPU-only image a
# few GB smaller, build with --build-arg PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu (torch==2.13.0+cpu
# then wins over torch==2.13.0: a local version sorts higher).
FROM ${PYTHON_IMAGE} AS train
# A build argument reaches RUN as an environment variable, which pip reads.
ARG PIP_EXTRA_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1 \
    INFOGAN_DATA=/data MPLCONFIGDIR=/tmp/matplotlib HOME=/tmp
WORKDIR /src
COPY requirements/ requirements/
RUN pip install -c requirements/constraints.txt -r requirements/train.txt
COPY pyproject.toml ./
COPY spec/ spec/
COPY training/ training/
COPY docker/train-and-export.sh /usr/local/bin/train-and-export
RUN pip install --no-deps . && chmod 0755 /usr/local/bin/train-and-export
# Any uid may run it (compose passes the host's, so files written to bind mounts belong to the host user).
USER 10001:10001
ENTRYPOINT ["train-and-export"]
CMD ["mnist"]

# ---------------------------------------------------------------------------------------------------------------
# GPU service: the layout of the cpu target below, on the CUDA runtime base, with onnxruntime-gpu.
# onnxruntime-web (pinned in package-lock.json) for the page's in-browser generator: three files into static/ort/
FROM node:20-slim AS web
WORKDIR /web
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts && mkdir ort && \
    cp node_modules/onnxruntime-web/dist/ort.wasm.min.mjs node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs \
       node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm ort/

FROM ${CUDA_IMAGE} AS gpu-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
COPY requirements/ /tmp/requirements/
RUN /opt/venv/bin/pip install -c /tmp/requirements/constraints.txt \
        -r /tmp/requirements/serve.txt -r /tmp/requirements/ort-gpu.txt

FROM ${CUDA_IMAGE} AS gpu
ENV DEBIAN_FRONTEND=noninteractive
# The venv links to /usr/bin/python3, so the runtime needs the same interpreter (not venv or pip).
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent explorer
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH PYTHONPATH=/app \
    MODELS_DIR=/app/models DEVICE=auto
COPY --from=gpu-deps /opt/venv /opt/venv
WORKDIR /app
COPY spec/ spec/
COPY backend/ backend/
COPY training/ training/
COPY frontend/ frontend/
COPY --from=web /web/ort/ frontend/static/ort/
COPY models/ models/
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
CMD ["python", "-m", "training", "serve", "--host", "0.0.0.0", "--port", "8000", "--forwarded-allow-ips", "*"]

# ---------------------------------------------------------------------------------------------------------------
# CPU service, the last stage so that a plain `docker build .` builds it. Build stage: a venv with the serving
# requirements; the runtime stage copies only the venv, so pip's cache and the requirements files stay behind.
FROM ${PYTHON_IMAGE} AS cpu-deps
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements/ /tmp/requirements/
RUN /opt/venv/bin/pip install -c /tmp/requirements/constraints.txt \
        -r /tmp/requirements/serve.txt -r /tmp/requirements/ort-cpu.txt

FROM ${PYTHON_IMAGE} AS cpu
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH PYTHONPATH=/app \
    MODELS_DIR=/app/models DEVICE=cpu
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent explorer
COPY --from=cpu-deps /opt/venv /opt/venv
WORKDIR /app
# Source is root-owned and read-only to the service user (uid 10001, named 'explorer'): the service writes nothing.
# spec/ is the latent spec and manifest the service reads; training/ only for its torch-free `serve` command (the
# CLI imports torch only inside the other commands).
COPY spec/ spec/
COPY backend/ backend/
COPY training/ training/
COPY frontend/ frontend/
COPY --from=web /web/ort/ frontend/static/ort/
COPY models/ models/
USER 10001:10001
EXPOSE 8000
# /readyz is 503 until every model has loaded; urlopen raises on any non-2xx, so no curl is needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"]
# `infogan serve` (python -m training serve: the same entry point, without installing the package), not
# `uvicorn backend.main:app`: it checks the settings in one line and closes connections stalled in their headers
# (HEADER_TIMEOUT_S), which uvicorn's CLI cannot be told to do. Proxy headers are on (uvicorn's default);
# --forwarded-allow-ips '*': behind the compose proxy or a Kubernetes ingress, log the client's address.
CMD ["python", "-m", "training", "serve", "--host", "0.0.0.0", "--port", "8000", "--forwarded-allow-ips", "*"]

