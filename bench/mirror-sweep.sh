#!/usr/bin/env bash
# Mirror-BERT on a pretrained mini, six variants, each scored on STS-B dev before and after (Spearman x 100): the
# paper's defaults, no dropout, a quarter of the learning rate, STS-B train sentences instead of Gutenberg (in domain,
# no scores), and CLS pooling with and without dropout. Run from the repository root with nothing else on the cores:
#   bash bench/mirror-sweep.sh runs/mlm-mini [OUT_DIR]
set -euo pipefail
MINI=${1:?pretrained mini folder}
OUT=${2:-runs/mirror-sweep}
DATA=${DATA:-../shared/data}
if [ -n "${UNMASK_CLI:-}" ]; then BIN=("$UNMASK_CLI"); else BIN=(dotnet run -c Release --project src/Unmask.Cli --); fi
mkdir -p "$OUT"
# STS-B train's distinct sentences, one per line, each ending in punctuation so the corpus reader cuts them apart.
python3 - "$DATA/stsb/train.csv" "$OUT/stsb-train-sentences.txt" <<'PY'
import csv, sys
seen, out = set(), []
for row in csv.reader(open(sys.argv[1], encoding="utf-8")):
    for s in row[:2]:
        s = s.strip()
        if not s or s in seen: continue
        seen.add(s)
        out.append(s if s[-1] in ".!?" else s + ".")
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(out) + "\n")
PY
run() { # name, then train-embeddings options
  local name=$1; shift
  [ -f "$OUT/$name/model.safetensors" ] || "${BIN[@]}" train-embeddings --model "$MINI" --output "$OUT/$name" --objective mirror \
    --validation "$DATA/stsb/dev.csv" --json "$@" > "$OUT/$name.json"
  python3 -c "import json,sys; v=[json.loads(l)['spearman'] for l in open(sys.argv[1]) if '\"validation\"' in l]; print(f'{sys.argv[2]:<12} {v[0]:.1f} -> {v[-1]:.1f}')" "$OUT/$name/metrics.jsonl" "$name"
}
run paper --train "$DATA/gutenberg-en" --dropout 0.1
run no-dropout --train "$DATA/gutenberg-en" --dropout 0
run lr-5e-6 --train "$DATA/gutenberg-en" --dropout 0.1 --lr 5e-6
run stsb-text --train "$OUT/stsb-train-sentences.txt" --dropout 0.1
run cls --train "$DATA/gutenberg-en" --dropout 0.1 --pooling cls
run cls-no-drop --train "$DATA/gutenberg-en" --dropout 0 --pooling cls
