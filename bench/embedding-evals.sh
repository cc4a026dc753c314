#!/usr/bin/env bash
# The README's sentence-embedding measurements on STS-B dev: a pretrained mini's pooling as it is, after Mirror-BERT
# on 10k corpus sentences (no STS labels) and after pairs training on STS-B train pairs scoring at least 4; the same
# for all-MiniLM-L6-v2 imported from ONNX. Run from the repository root with nothing else on the cores:
#   bash bench/embedding-evals.sh runs/mlm-mini MINILM_FOLDER [REPORTS_DIR]
# MINILM_FOLDER is the output of `import onnx` (the package's model.onnx and vocab.txt; see the README).
set -euo pipefail
MINI=${1:?pretrained mini folder}
MINILM=${2:?imported all-MiniLM-L6-v2 folder}
OUT=${3:-runs/embedding-reports}
DATA=${DATA:-../shared/data}
CORPUS=${CORPUS:-$DATA/gutenberg-en}
if [ -n "${UNMASK_CLI:-}" ]; then BIN=("$UNMASK_CLI"); else BIN=(dotnet run -c Release --project src/Unmask.Cli --); fi
mkdir -p "$OUT"
DEV="$DATA/stsb/dev.csv"

sts() { # name, model, then pooling options
  local name=$1 model=$2; shift 2
  "${BIN[@]}" eval sts --model "$model" --data "$DEV" --report "$OUT/$name.json" "$@" > /dev/null
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"{sys.argv[2]:<28} spearman {r['spearman']:.2f}  pearson {r['pearson']:.2f}\")" "$OUT/$name.json" "$name"
}
train() { # name, model, then train-embeddings options
  local name=$1 model=$2; shift 2
  [ -f "$OUT/$name/model.safetensors" ] || "${BIN[@]}" train-embeddings --model "$model" --output "$OUT/$name" --json "$@" > "$OUT/$name.train.json"
}

sts mini-mean "$MINI" --pooling mean
sts mini-cls "$MINI" --pooling cls
# The mini was pretrained without dropout; Mirror-BERT needs it (the two views differ by dropout and the masked span).
train mini-mirror "$MINI" --objective mirror --train "$CORPUS" --validation "$DEV" --dropout 0.1
sts mini-mirror "$OUT/mini-mirror"
train mini-pairs "$MINI" --dropout 0.1 --objective pairs --train "$DATA/stsb/train.csv" --min-score 4 --batch-size 64 --lr 1e-4 --epochs 3 --validation "$DEV"
sts mini-pairs "$OUT/mini-pairs"
sts minilm-mean "$MINILM" --pooling mean --normalize
train minilm-mirror "$MINILM" --objective mirror --train "$CORPUS" --validation "$DEV"
sts minilm-mirror "$OUT/minilm-mirror"
