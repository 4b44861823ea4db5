#!/usr/bin/env bash
# End-to-end on a throwaway kind cluster (`make e2e`): Katib and Kubeflow Pipelines installed from
# their pinned release manifests, the study's images loaded, k8s/overlays/kind applied, one shrunken
# Katib Experiment (2 trials of 1 epoch) launched and waited on with `study katib launch`, and the
# pipeline compiled on the smoke profile, run on KFP and checked (run state, stored artifacts).
# The cluster is deleted on the way out, whatever happened (E2E_KEEP_CLUSTER=1 keeps it).
#
# It needs kind, a running Docker engine, kubectl, git (kustomize's remote bases), curl and the
# internet (the release manifests, Katib's and KFP's images). Without one of them it prints one line,
# `skipped: <reason>`, and exits 0; it prints `passed: ...` only after every step above ran and
# every check held. Any failure exits non-zero with `failed: ...` as the last line.
#
# Settings (environment): E2E_CLUSTER (kind cluster name, default fmstudy-e2e), KIND_NODE_IMAGE,
# KATIB_VERSION, KFP_VERSION, E2E_KEEP_CLUSTER=1, E2E_SKIP_BUILD=1 (use an existing fmstudy/trainer:dev).
set -euo pipefail

# ---------------------------------------------------------------- preconditions (builtins only until they hold)

skip() {
  echo "skipped: $1"
  exit 0
}

command -v kind >/dev/null 2>&1 || skip "kind not found on PATH"
command -v docker >/dev/null 2>&1 || skip "docker not found on PATH"
docker info >/dev/null 2>&1 || skip "no running Docker engine (docker info failed)"
command -v kubectl >/dev/null 2>&1 || skip "kubectl not found on PATH"
command -v git >/dev/null 2>&1 || skip "git not found on PATH (kustomize fetches the release manifests with it)"
command -v curl >/dev/null 2>&1 || skip "curl not found on PATH (needed to check internet access)"
curl -fsS -m 5 -o /dev/null https://github.com >/dev/null 2>&1 || skip "no internet access (https://github.com unreachable in 5 s)"

# ---------------------------------------------------------------- settings

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
CLUSTER="${E2E_CLUSTER:-fmstudy-e2e}"
KIND_NODE_IMAGE="${KIND_NODE_IMAGE:-kindest/node:v1.32.2}"  # the Kubernetes the unit tests validate against
KATIB_VERSION="${KATIB_VERSION:-v0.19.0}"                   # kubeflow-katib-api in requirements.lock
# 2.14 is the first backend that collects a loop's artifacts for the next step (dsl.Collected, the
# transfer runs into the report; kubeflow/pipelines#11725); 2.15 and later install SeaweedFS instead
# of MinIO in platform-agnostic, and the kind target writes to KFP's MinIO.
KFP_VERSION="${KFP_VERSION:-2.14.3}"
# What `make images` builds with these and k8s/overlays/kind maps ghcr.io/fmstudy/trainer to.
export STUDY_IMAGE_REGISTRY=fmstudy STUDY_IMAGE_TAG=dev
IMAGE="$STUDY_IMAGE_REGISTRY/trainer:$STUDY_IMAGE_TAG"
NAMESPACE=fmstudy
PY="$REPO/.venv/bin/python"
STUDY="$REPO/.venv/bin/study"

if [[ ! -x "$STUDY" ]]; then
  echo "failed: $STUDY is missing: run \`make install\` (or \`make e2e\`, which does)" >&2
  exit 2
fi
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "failed: a kind cluster named $CLUSTER exists already; delete it (kind delete cluster --name $CLUSTER) or set E2E_CLUSTER" >&2
  exit 2
fi

WORK="$(mktemp -d -t fmstudy-e2e.XXXXXX)"
export KUBECONFIG="$WORK/kubeconfig"  # this cluster only: the user's ~/.kube/config is left alone
PF_PID=""
CLUSTER_CREATED=0
STEP="setup"

log() { echo "e2e: $(date +%H:%M:%S) $*"; }
step() { STEP="$1"; log "$1"; }

diagnostics() {
  echo "---- diagnostics ($STEP)"
  kubectl get pods -A -o wide || true
  kubectl -n "$NAMESPACE" get experiments,trials,jobs -o wide 2>/dev/null || true
  kubectl -n "$NAMESPACE" get events --sort-by=.lastTimestamp 2>/dev/null | tail -n 30 || true
  local pod
  for pod in $(kubectl get pods -A --no-headers 2>/dev/null | awk '$4 !~ /Running|Completed/ {print $1 "/" $2}'); do
    echo "---- logs ${pod}"
    kubectl -n "${pod%%/*}" logs "${pod#*/}" --all-containers --tail=40 2>/dev/null || true
  done
}

cleanup() {
  local rc=$?
  trap - EXIT
  set +e
  [[ -n "$PF_PID" ]] && kill "$PF_PID" 2>/dev/null
  if [[ $rc -ne 0 && $CLUSTER_CREATED -eq 1 ]]; then
    diagnostics >&2
  fi
  if [[ $CLUSTER_CREATED -eq 1 ]]; then
    if [[ "${E2E_KEEP_CLUSTER:-0}" == 1 ]]; then
      log "keeping cluster $CLUSTER (KUBECONFIG=$KUBECONFIG)"
    else
      kind delete cluster --name "$CLUSTER" >/dev/null 2>&1
      rm -rf "$WORK"
    fi
  else
    rm -rf "$WORK"
  fi
  if [[ $rc -ne 0 ]]; then
    echo "failed: kind e2e at step '$STEP' (exit $rc)"
  fi
  exit "$rc"
}
trap cleanup EXIT

wait_for_port() {  # wait_for_port PORT SECONDS: an HTTP answer from the port-forward
  local deadline=$((SECONDS + $2))
  until curl -fsS -m 2 -o /dev/null "http://127.0.0.1:$1/apis/v2beta1/healthz" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 2
  done
}

# ---------------------------------------------------------------- images (before the cluster: fail fast)

if [[ "${E2E_SKIP_BUILD:-0}" != 1 ]]; then
  step "building images (make images STUDY_IMAGE_REGISTRY=$STUDY_IMAGE_REGISTRY STUDY_IMAGE_TAG=$STUDY_IMAGE_TAG)"
  make images STUDY_IMAGE_REGISTRY="$STUDY_IMAGE_REGISTRY" STUDY_IMAGE_TAG="$STUDY_IMAGE_TAG"
fi
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "e2e: image $IMAGE is not in the Docker engine (make images STUDY_IMAGE_REGISTRY=fmstudy STUDY_IMAGE_TAG=dev)" >&2
  exit 1
fi

# ---------------------------------------------------------------- cluster, Katib, KFP

step "creating kind cluster $CLUSTER ($KIND_NODE_IMAGE)"
CLUSTER_CREATED=1
kind create cluster --name "$CLUSTER" --config k8s/kind/cluster.yaml --image "$KIND_NODE_IMAGE" \
  --kubeconfig "$KUBECONFIG" --wait 5m

step "loading $IMAGE into the nodes"
kind load docker-image "$IMAGE" --name "$CLUSTER"

step "installing Katib $KATIB_VERSION (standalone)"
kubectl apply -k "github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=$KATIB_VERSION"

step "installing Kubeflow Pipelines $KFP_VERSION (platform-agnostic)"
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/cluster-scoped-resources?ref=$KFP_VERSION"
kubectl wait --for condition=established --timeout=120s crd/applications.app.k8s.io
kubectl apply -k "github.com/kubeflow/pipelines/manifests/kustomize/env/platform-agnostic?ref=$KFP_VERSION"

step "waiting for Katib and KFP to be available"
kubectl wait --for condition=established --timeout=120s crd/experiments.kubeflow.org
kubectl -n kubeflow wait --for condition=Available deployment --all --timeout=20m

# ---------------------------------------------------------------- the study's manifests

step "applying k8s/overlays/kind"
kubectl apply -k k8s/overlays/kind
kubectl -n "$NAMESPACE" wait --for condition=Available deployment/gcs-emulator --timeout=5m
step "seeding the GCS emulator with the smoke-size dataset"
kubectl -n "$NAMESPACE" wait --for condition=Complete job/fmstudy-seed-data --timeout=15m

# ---------------------------------------------------------------- Katib: one shrunken Experiment

step "launching the shrunken optimizer Experiment (2 trials, 1 epoch)"
"$PY" -m tests.e2e.kind_e2e shrink katib/experiments/optimizer.yaml --image "$IMAGE" --out "$WORK/optimizer-e2e.yaml"
"$STUDY" katib launch "$WORK/optimizer-e2e.yaml" --timeout 30m --outputs-json "$WORK/optimizer-e2e.json"
step "checking the optimal trial"
"$PY" -m tests.e2e.kind_e2e check-katib "$WORK/optimizer-e2e.json" "$WORK/optimizer-e2e.yaml"

# ---------------------------------------------------------------- KFP: the pipeline on the smoke profile

step "compiling the pipeline (smoke profile, image $IMAGE)"
# --target kind: KFP's own MinIO as pipeline and work root, small pods, no GPUs (pipelines/cluster.py).
"$STUDY" compile --target kind --image "$IMAGE" --profile smoke --out "$WORK/study_pipeline.yaml"
grep -q "image: $IMAGE" "$WORK/study_pipeline.yaml"
if grep -q "ghcr.io/fmstudy/trainer:" "$WORK/study_pipeline.yaml"; then
  echo "e2e: the compiled pipeline still names ghcr.io/fmstudy/trainer, which kind cannot pull" >&2
  exit 1
fi

step "port-forwarding the KFP API"
PORT=$((20000 + RANDOM % 20000))
kubectl -n kubeflow port-forward svc/ml-pipeline "$PORT:8888" >"$WORK/port-forward.log" 2>&1 &
PF_PID=$!
wait_for_port "$PORT" 120

step "running the pipeline on KFP"
RUN_ID="$("$PY" -m tests.e2e.kind_e2e run-pipeline "$WORK/study_pipeline.yaml" \
  --host "http://127.0.0.1:$PORT" --run-name "fmstudy-e2e-smoke" --timeout 3600)"

step "checking the run's artifacts in the object store (minio)"
kubectl -n kubeflow exec deploy/minio -- find /data/mlpipeline/v2/artifacts -path "*/$RUN_ID/*" -type f \
  >"$WORK/artifacts.txt"
"$PY" -m tests.e2e.kind_e2e check-artifacts "$WORK/artifacts.txt" "$RUN_ID"

STEP="done"
echo "passed: kind e2e (Katib $KATIB_VERSION: 2-trial Experiment; KFP $KFP_VERSION: run $RUN_ID succeeded)"
