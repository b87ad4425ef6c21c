# Scoring image: azmlinfsrv runs score.py on port 5001 with ONNX Runtime, in gunicorn gevent workers
# (amlvision/serving/gunicorn_conf.py: slow clients do not block the service). No PyTorch, no compilers,
# no training libraries; runs as a non-root user. Works with the classic builder and BuildKit.
#
#   docker build -t amlvision-score .                            # bakes outputs/ in (needs a trained model)
#   docker build --target runtime -t amlvision-score .           # no model: mount one at run time
#   docker run -p 127.0.0.1:5001:5001 -v $PWD/outputs:/var/azureml-models/model:ro amlvision-score
#
# Build arguments:
#   BASE_IMAGE  a Debian-based Python 3.11 image (default: the public python:3.11-slim-bookworm;
#               scripts/build-base-image.sh builds an equivalent locally when no registry is reachable)
#   WHEELS      a folder in the build context with pre-downloaded wheels (e.g. build/wheels) for
#               offline builds; empty (default) installs from PyPI
#   MODEL_DIR   the model folder baked in by the final stage (default outputs)
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG WHEELS=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements-score.txt /src/
# With WHEELS empty this copies a harmless file, so one Dockerfile serves online and offline builds.
COPY ${WHEELS:-requirements-score.txt} /wheels/
RUN set -eu; \
    if [ -n "$WHEELS" ]; then set -- --no-index --find-links /wheels; fi; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install "$@" -r /src/requirements-score.txt "setuptools>=68"
COPY pyproject.toml README.md /src/
COPY amlvision /src/amlvision
# The package itself without its training dependencies; then drop the installer tools.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation /src \
    && /opt/venv/bin/pip uninstall -y -q setuptools pip \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && /opt/venv/bin/python -c "import amlvision.serving.entry, onnxruntime, PIL, numpy, inference_schema"

FROM ${BASE_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AML_APP_ROOT=/var/azureml-app \
    AZUREML_ENTRY_SCRIPT=/var/azureml-app/score.py \
    AZUREML_MODEL_DIR=/var/azureml-models/model \
    SERVICE_NAME=amlvision \
    WORKER_COUNT=2 \
    AMLVISION_ORT_THREADS=1 \
    OMP_NUM_THREADS=1 \
    GUNICORN_CMD_ARGS="--config python:amlvision.serving.gunicorn_conf"
RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /var/azureml-app \
        --shell /usr/sbin/nologin scorer \
    && mkdir -p /var/azureml-app /var/azureml-models/model
COPY --from=build /opt/venv /opt/venv
COPY score.py /var/azureml-app/score.py
# azmlinfsrv reads logging.json from AML_APP_ROOT: the package's log lines reach the server log.
COPY amlvision/serving/logging.json /var/azureml-app/logging.json
USER scorer
WORKDIR /var/azureml-app
EXPOSE 5001
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5001/', timeout=2)"]
CMD ["azmlinfsrv", "--entry_script", "/var/azureml-app/score.py", "--port", "5001"]

FROM runtime AS with-model
ARG MODEL_DIR=outputs
COPY ${MODEL_DIR}/model.onnx ${MODEL_DIR}/labels.json ${MODEL_DIR}/preprocess.json /var/azureml-models/model/
