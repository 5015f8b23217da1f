# syntax=docker/dockerfile:1
# The mawb worker image: every task of a DAG compiled with `mawb compile --kubernetes` is a pod
# running `mawb step ...` in this image (see deploy/README.md). mawb and its dependencies come
# from uv.lock exactly (`--frozen`), so a pod runs the versions the tests ran. The airflow extra
# is installed too, so the image can also check compiled DAGs (DagBag) in CI.
#
#   docker build -t mawb:0.1.0 .
#   docker run --rm mawb:0.1.0 templates list

FROM python:3.11-slim AS build

# Same uv as the Makefile, so the lock file is read the way it was written.
ARG UV_VERSION=0.13.8
RUN pip install --no-cache-dir "uv==${UV_VERSION}"

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/mawb

WORKDIR /src
# Dependencies first: this layer changes only when the lock file does.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra airflow --no-install-project
# Then mawb itself, installed as a regular (non-editable) package with its templates.
COPY mawb ./mawb
COPY templates ./templates
RUN uv sync --frozen --no-dev --extra airflow --no-editable


FROM python:3.11-slim

# A fixed non-root uid: the workspace volume (deploy/mawb-pvc.yaml) is made writable for it
# through the pod's fsGroup.
RUN groupadd --system --gid 10001 mawb \
    && useradd --system --uid 10001 --gid mawb --home-dir /var/lib/mawb --create-home mawb

COPY --from=build /opt/mawb /opt/mawb
ENV PATH=/opt/mawb/bin:$PATH \
    MAWB_HOME=/var/lib/mawb \
    PYTHONUNBUFFERED=1

USER 10001:10001
WORKDIR /var/lib/mawb
ENTRYPOINT ["mawb"]
CMD ["--help"]
