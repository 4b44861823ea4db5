# The front door. `make help` lists every target.
SHELL := /bin/bash
# The newest supported Python on PATH; PYTHON=python3.12 overrides (scripts/install.sh checks it).
SUPPORTED_PYTHONS := 3.13 3.12 3.11 3.10
PYTHON ?= $(or $(firstword $(foreach v,$(SUPPORTED_PYTHONS),$(shell python$(v) -c '' >/dev/null 2>&1 && echo python$(v)))),python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STUDY := $(VENV)/bin/study
STAMP := $(VENV)/.installed
PROFILE ?= smoke
SET ?=
RUN_ID ?=
PYTEST_ARGS ?=
K8S_ROOTS := base overlays/kind overlays/kind-nas overlays/gpu-cloud overlays/gpu-cloud-nas overlays/kubeflow-multi-user
OVERLAY ?= kind
BENCH_ONLY ?=
BENCH_SET ?=
FMNIST_DIR := /usr/share/datasets/fashion-mnist

.DEFAULT_GOAL := help
.PHONY: help install lock data run test test-fast pipeline katib images images-gpu run-docker submit e2e katib-apply k8s-render k8s-apply bench bench-quick lint clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  variables: PROFILE=smoke|study  SET='train.epochs=3 data.train_size=null'  RUN_ID=name  PYTEST_ARGS=..."
	@echo "             BASE_IMAGE=local|IMAGE  BAKE_DATA=/usr/share/datasets/fashion-mnist  KFP_ENDPOINT=URL"
	@echo "             OVERLAY=kind|gpu-cloud|kubeflow-multi-user|kind-nas|gpu-cloud-nas  BENCH_ONLY=1,3  BENCH_SET='train_images=2560'"

$(STAMP): uv.lock pyproject.toml scripts/install.sh
	@scripts/install.sh $(VENV) $(PYTHON)

install: $(STAMP) ## create .venv from uv.lock with the newest supported Python (PYTHON=python3.12 to choose)

lock: install ## re-resolve uv.lock (every supported Python and platform) and export requirements.lock
	$(VENV)/bin/uv lock
	$(VENV)/bin/uv export --frozen --no-hashes --no-header --no-annotate --no-emit-project --no-dev \
	  --output-file requirements.lock >/dev/null

data: ## install Debian's dataset-fashion-mnist when missing (as root, where apt-get exists)
	@if ls $(FMNIST_DIR)/train-images-idx3-ubyte* >/dev/null 2>&1; then \
	  echo "Fashion-MNIST: $(FMNIST_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "Fashion-MNIST: installing Debian's dataset-fashion-mnist"; \
	  (apt-get install -y -q dataset-fashion-mnist || (apt-get update -q && apt-get install -y -q dataset-fashion-mnist)) >/dev/null; \
	else \
	  echo "Fashion-MNIST: not installed here; the data step will use --source or the Keras download"; \
	fi

run: install data ## run the pipeline locally (kfp.local) on PROFILE (default smoke); prints the report path
	$(STUDY) run --profile $(PROFILE) $(foreach s,$(SET),--set $(s)) $(if $(RUN_ID),--run-id $(RUN_ID))

test: install data ## run the whole test suite
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install data ## the unit tests only (no training, no pipeline)
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

pipeline: install ## compile the pipeline to pipelines/compiled/study_pipeline.yaml
	$(STUDY) compile --out pipelines/compiled/study_pipeline.yaml

katib: install ## write the three sweeps' Katib Experiments to katib/experiments/ (CPU, and gpu/)
	$(STUDY) katib generate --out katib/experiments
	$(STUDY) katib validate katib/experiments/*.yaml katib/experiments/gpu/*.yaml

images: install ## build the trainer image (BASE_IMAGE=local: a Debian base made here, for machines that cannot pull)
	PYTHON=$(PY) images/build.sh $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE)) $(if $(BAKE_DATA),--bake-data $(BAKE_DATA))

images-gpu: install ## build the GPU trainer image (tensorflow GPU base)
	PYTHON=$(PY) images/build.sh --variant gpu $(if $(BASE_IMAGE),--base-image $(BASE_IMAGE))

run-docker: install data ## run the pipeline locally with every step in a container (kfp.local DockerRunner)
	$(STUDY) run --runner docker --profile $(PROFILE) $(foreach s,$(SET),--set $(s)) $(if $(RUN_ID),--run-id $(RUN_ID))

submit: install ## submit pipelines/compiled/study_pipeline.yaml to KFP at KFP_ENDPOINT (what a CI job calls)
	@test -n "$(KFP_ENDPOINT)" || { echo "error: KFP_ENDPOINT is not set (the KFP API, e.g. https://HOST/pipeline)" >&2; exit 2; }
	$(VENV)/bin/kfp --endpoint $(KFP_ENDPOINT) run create --experiment-name fmstudy \
	  --run-name study-$$(date +%Y%m%d-%H%M%S) --package-file pipelines/compiled/study_pipeline.yaml $(if $(WATCH),--watch)

e2e: install ## kind end-to-end: Katib + KFP on a throwaway cluster (prints "skipped: ..." without kind/docker/kubectl/internet)
	bash tests/e2e/kind_e2e.sh

katib-apply: ## create the three CPU sweeps' Experiments on the current kubectl context (after k8s-apply)
	kubectl apply -f katib/experiments/

k8s-render: ## render each kustomize root to build/k8s/ (kubectl kustomize)
	@mkdir -p build/k8s
	@for root in $(K8S_ROOTS); do out=build/k8s/$$(echo $$root | tr / -).yaml; \
	  kubectl kustomize k8s/$$root > $$out && echo $$out; done

k8s-apply: ## apply k8s/overlays/$(OVERLAY) (kind, gpu-cloud, kubeflow-multi-user; kind-nas, gpu-cloud-nas add the AutoKeras search)
	kubectl apply -k k8s/overlays/$(OVERLAY)

bench: install data ## the benchmark: bench/results/<date>-<machine>.json/.md (about 2 h on 2 idle cores; item 10 alone 26 min)
	$(PY) -m bench.run $(if $(BENCH_ONLY),--only $(BENCH_ONLY)) $(foreach s,$(BENCH_SET),--set $(s))

bench-quick: install data ## the benchmark on tiny sizes (minutes): checks the harness; writes runs/bench/results/
	$(PY) -m bench.run --quick $(if $(BENCH_ONLY),--only $(BENCH_ONLY)) $(foreach s,$(BENCH_SET),--set $(s))

lint: install ## static checks (ruff)
	$(PY) -m ruff check components katib pipelines tests bench images

clean: ## remove the virtual environment and local runs
	rm -rf $(VENV) .venv-3.* runs .pytest_cache
