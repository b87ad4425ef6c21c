# Training image for `amlvision submit --target docker`: the environment conda_dependencies.yml describes.
#
# conda_dependencies.yml is the one dependency list of every target. Azure ML builds a conda
# environment from it; this image installs the same pip list into a venv on a Python 3.11 base
# (the `python=3.11` the file asks for is checked, not installed), so no conda is needed locally.
#
#   docker build -f docker/train.Dockerfile -t amlvision/train .          # public base, packages from PyPI
#   docker build -f docker/train.Dockerfile --build-arg BASE_IMAGE=amlvision/base:bookworm \
#       --build-arg PIP_OPTIONS="--no-index --find-links http://172.17.0.1:8000/ --trusted-host 172.17.0.1" ...
#
# BASE_IMAGE: any Debian-like image with python3 (3.11) and its venv module. The default is the
#   public image users pull; machines without a registry use scripts/build-base-image.sh's image.
# CONDA_FILE: the environment file; conda_dependencies.tensorflow.yml adds the TensorFlow engine
#   (train.py --engine tensorflow):  docker build -f docker/train.Dockerfile \
#       --build-arg CONDA_FILE=conda_dependencies.tensorflow.yml -t amlvision/train:tensorflow .
# PIP_OPTIONS: extra pip options, e.g. a wheel folder served from the host (amlvision.submit.images
#   does that when no package index is reachable from inside a build).
# The build context needs only this file and conda_dependencies.yml; the project itself is mounted
# at run time, so code changes never rebuild the image.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG PIP_OPTIONS=""
ARG CONDA_FILE=conda_dependencies.yml
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLBACKEND=Agg

COPY ${CONDA_FILE} /opt/amlvision-env/conda_dependencies.yml
COPY docker/conda_pip_list.py /opt/amlvision-env/
RUN python3 -m venv /opt/venv \
    && pip install $PIP_OPTIONS "pyyaml>=6.0" \
    && python /opt/amlvision-env/conda_pip_list.py /opt/amlvision-env/conda_dependencies.yml \
        > /opt/amlvision-env/requirements.txt \
    && pip install $PIP_OPTIONS -r /opt/amlvision-env/requirements.txt \
    && python -c "import torch, torchvision, onnx, onnxruntime; print('torch', torch.__version__)" \
    && if grep -q tensorflow /opt/amlvision-env/requirements.txt; then \
        python -c "import tensorflow as tf, tf2onnx; print('tensorflow', tf.__version__)"; fi

# Runs as whatever user `docker run --user` names; HOME must be writable for matplotlib and torch caches.
ENV HOME=/tmp
WORKDIR /workspace
CMD ["python", "train.py", "--help"]
