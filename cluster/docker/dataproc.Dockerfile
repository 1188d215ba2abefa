# Custom container for the Spark path job on Dataproc Serverless (batches, runtime version 3.0):
#   docker build -f cluster/docker/dataproc.Dockerfile -t medreason-dist/dataproc:0.1.0 .
# then push to Artifact Registry (Serverless pulls only from Artifact/Container Registry) and pass
# it as the batch's runtime_config.container_image (terraform's image variable).
# Not built in this project's CI: base images cannot be pulled offline, so the file is checked by
# checkov and by tests/test_cluster_specs.py instead.
#
# What Google's custom-container guide asks for, and how this file meets it:
# - no Spark in the image: the service mounts its own Spark (4.0 for runtime 3.0) at run time, so
#   pyspark is not installed here (cluster/bundle/requirements.txt leaves it out);
# - no JDK: the service provides Java with Spark for runtime 2.0 and later;
# - procps and tini, which Spark's launch scripts call;
# - a `spark` user and group with uid/gid 1099, which the service runs the containers as;
# - PYSPARK_PYTHON pointing at the interpreter that has the job's Python deps.
# No HEALTHCHECK: this is a batch container whose driver/executor processes Dataproc starts, watches
# and stops itself; there is no long-running service here to probe, and the service ignores it.
#checkov:skip=CKV_DOCKER_2:batch-only container, lifecycle owned by Dataproc Serverless (see above)
FROM python:3.11-slim-bookworm

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends procps tini libjemalloc2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd -g 1099 spark \
    && useradd -u 1099 -g 1099 -d /home/spark -m spark

# The job's deps in their own venv (the same list `make bundle` packs for EMR), plus the package
# itself, non-editable and without its Ray/torch deps: the path job needs none of them.
ENV VENV=/opt/medreason-venv
COPY cluster/bundle/requirements.txt /tmp/requirements.txt
COPY pyproject.toml README.md /tmp/src/
COPY medreason_dist /tmp/src/medreason_dist
RUN python -m venv "$VENV" \
    && "$VENV/bin/pip" install --no-cache-dir -r /tmp/requirements.txt \
    && "$VENV/bin/pip" install --no-cache-dir --no-deps /tmp/src \
    && rm -rf /tmp/src /tmp/requirements.txt

ENV PATH=/opt/medreason-venv/bin:$PATH \
    PYSPARK_PYTHON=/opt/medreason-venv/bin/python \
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
    PYTHONUNBUFFERED=1

USER spark
WORKDIR /home/spark
