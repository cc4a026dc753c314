#!/usr/bin/env bash
# The README's generation measurements: eval infill on two model folders, unconditional samples, three infills.
# Run from the repository root with nothing else on the cores:
#   bash bench/generation-evals.sh runs/mlm-mini runs/mdlm-mini [REPORTS_DIR]
set -euo pipefail
MLM=${1:?MLM model folder}
MDLM=${2:?MDLM model folder}
OUT=${3:-runs/generation-reports}
CORPUS=${CORPUS:-../shared/data/gutenberg-en}
BIN=(dotnet run -c Release --project src/Unmask.Cli --)
mkdir -p "$OUT"
for model in "$MLM" "$MDLM"; do
  name=$(basename "$model")
  for mask in "--mask random --mask-rate 0.15" "--mask span --span-length 4" "--mask span --span-length 8"; do
    tag=$(echo "$mask" | tr -d ' -')
    # shellcheck disable=SC2086
    "${BIN[@]}" eval infill --model "$model" --corpus "$CORPUS" --encoding auto $mask --windows 64 --temperature 0 \
      --sampler ancestral,confidence,mask-predict --steps 1,4,16 --report "$OUT/$name-$tag.json" > /dev/null
    # shellcheck disable=SC2086
    "${BIN[@]}" eval infill --model "$model" --corpus "$CORPUS" --encoding auto $mask --windows 64 --temperature 0 --block-length 16 \
      --sampler confidence,dilated --steps 4 --report "$OUT/$name-$tag-b16.json" > /dev/null
  done
done
"${BIN[@]}" eval samples --model "$MDLM" --judge "$MLM" --corpus "$CORPUS" --encoding auto --samples 16 --length 128 \
  --sampler ancestral --steps 1000 --seed 1 --report "$OUT/samples.json"
"${BIN[@]}" generate --model "$MDLM" --length 128 --sampler ancestral --steps 1000 --num-samples 3 --seed 1 --json > "$OUT/unconditional.jsonl"
"${BIN[@]}" generate --model "$MDLM" --sampler ancestral --steps 1000 --seed 2 --json \
  "And so it was indeed: she was now only ten inches high, and her face brightened up at the thought that she was now the right size for going through [MASK] [MASK] [MASK] [MASK] [MASK] [MASK] [MASK] [MASK]." \
  "\"Tush,\" said the Abbot, \"thou canst tell us if thou wilt. This reverend brother has been all his life engaged in fighting among the Saracens [MASK] [MASK] [MASK] [MASK] [MASK] [MASK] [MASK] [MASK]; he is of the order of Knights Templars.\"" \
  "It would not be proper, for some reasons, to trouble the reader with the particulars of our adventures in those seas; let it suffice to inform him, that in our passage from thence to the East Indies, we were driven [MASK] [MASK] [MASK] [MASK] [MASK] [MASK] [MASK] [MASK] of Van Diemen's Land." \
  > "$OUT/infills.jsonl"
