# Ray GPU image for the cluster launcher (cluster/ray/*.yaml) and KubeRay (cluster/kuberay/*.yaml).
#   docker build -f cluster/docker/ray-gpu.Dockerfile -t medreason-dist/ray-gpu:0.1.0 .
# (build context = repository root; ray-gpu.Dockerfile.dockerignore keeps venvs, caches and outputs out).
# Not built in this project's CI: base images cannot be pulled offline, so the file is checked by
# checkov and by tests/test_cluster_specs.py instead.
#
# Base: Ray 2.60.0, Python 3.11, CUDA 12.8 -- the Ray and Python the package pins; the CUDA vLLM
# that ray[llm]==2.60.0 pins is built for CUDA 12.8.
FROM rayproject/ray:2.60.0-py311-cu128

# Root only to create the two directories the non-root `ray` user (uid 1000, group users/100; the
# base image's user, owner of the conda env under /home/ray) must write: the checkout and the
# model cache (conf/*.yaml models.cache_dir; mount a volume over it on clusters).
USER root
RUN mkdir -p /app /mnt/models && chown ray:users /app /mnt/models
USER ray
WORKDIR /app

# Dependencies first (pyproject only), so editing code does not re-download the CUDA stack.
# `.[gpu]` = ray[llm]==2.60.0 (CUDA vLLM) + the package's own deps; the package is then installed
# non-editable, so the jobs import the same code whether /app is on sys.path or not.
COPY --chown=ray:users pyproject.toml README.md /app/
RUN mkdir -p /app/medreason_dist && touch /app/medreason_dist/__init__.py \
    && pip install --no-cache-dir "/app[gpu]" \
    && pip uninstall -y medreason_dist \
    && rm -rf /app/build /app/medreason_dist /app/*.egg-info

# The checkout: jobs/ and conf/ are what RayJob entrypoints (working_dir /app) run.
COPY --chown=ray:users . /app
# pip's in-tree build leaves build/ and *.egg-info: removed, as Ray uploads /app as working_dir.
RUN pip install --no-cache-dir --no-deps /app \
    && rm -rf /app/build /app/*.egg-info \
    && python -c "import medreason_dist.jobs, ray; from importlib.metadata import version as v; print('image ok: ray', ray.__version__, 'vllm', v('vllm'))"

ENV TOKENIZERS_PARALLELISM=false \
    PYTHONUNBUFFERED=1

# Healthy = the Ray node started in this container answers; before `ray start` it reports unhealthy,
# which is what a container that does no work yet is.
HEALTHCHECK --interval=60s --timeout=20s --start-period=120s --retries=3 CMD ray health-check || exit 1
