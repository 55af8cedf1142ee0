#!/usr/bin/env bash
# Entry point of the `train` image: train a config, then export its checkpoint to $MODELS_OUT, where the service
# reads its models (compose mounts ./models there), under the id $MODEL_ID.
#   train-and-export [CONFIG] [extra `infogan train` options...]     e.g. train-and-export mnist --epochs 2
# Data comes from $INFOGAN_DATA/<data set> (/data, mounted from ./.data) and is downloaded there if missing;
# runs go to $RUNS_DIR; $EXPORT_WEIGHTS picks the stored weight format (fp32, fp16, int8). Restart the service afterwards: it loads models when it starts.
set -euo pipefail

config="${1:-mnist}"
shift || true
name="${config##*/}"
model_id="${MODEL_ID:-${name%.toml}-local}"
runs_dir="${RUNS_DIR:-/runs}"
models_out="${MODELS_OUT:-/models}"

force=()
if [[ -n "${EXPORT_FORCE:-}" ]]; then
  force=(--force)
elif [[ -e "$models_out/$model_id" ]]; then
  # infogan export refuses to replace a model without --force; say so now, not after the training
  echo "train-and-export: $models_out/$model_id exists; set EXPORT_FORCE=1 to replace it, or MODEL_ID to another id" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
infogan train "$config" --runs-dir "$runs_dir" --no-progress "$@" | tee "$log"
# `infogan train` ends with "checkpoint: <path>"; export exactly that run, not whichever is newest.
checkpoint="$(sed -n 's/^checkpoint: //p' "$log" | tail -n 1)"
if [[ -z "$checkpoint" ]]; then
  echo "train-and-export: training printed no checkpoint path" >&2
  exit 1
fi
# int8 storage: a quarter of fp32 on disk, same fp32 arithmetic (see `infogan export --help`)
infogan export "$checkpoint" --id "$model_id" --models-dir "$models_out" --weights "${EXPORT_WEIGHTS:-int8}" "${force[@]}"
echo "train-and-export: model '$model_id' is in $models_out; restart the service to load it (docker compose restart explorer)"
