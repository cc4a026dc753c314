"""Prints the README's classifier table (markdown) from the reports of bench/classification-evals.sh.

    python3 bench/classification-table.py [REPORTS_DIR]
"""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "runs/classification")


def summary(name, metric):
    path = out / f"{name}.json"
    if not path.exists():
        return "not run", ""
    report = json.loads(path.read_text())
    runs = report["runs"]
    seconds = max(r["seconds"] for r in runs)
    if report.get("summary"):
        s = report["summary"][metric]
        return f"{s['mean']:.1f} ± {s['std']:.1f}", f"{seconds / 60:.1f}"
    return f"{runs[0]['best'][metric]:.1f}", f"{seconds / 60:.1f}"


print("| task (dev) | metric | pretrained mini | random init | linear probe | longest run (min) |")
print("|---|---|---|---|---|---|")
for task, metric, label in [("sst2", "accuracy", "accuracy"), ("stsb", "spearman", "Spearman ×100"), ("wnut17", "f1", "entity F1")]:
    cells = [summary(f"{task}-{variant}", metric) for variant in ("pre", "random", "probe")]
    longest = max((float(c[1]) for c in cells if c[1]), default=0)
    print(f"| {task} | {label} | {cells[0][0]} | {cells[1][0]} | {cells[2][0]} | {longest:.1f} |")

print()
print("| SST-2 dev, the same mini | accuracy | macro-F1 |")
print("|---|---|---|")
for name, label in [("sst2-zero-shot", "zero-shot `classify`"), ("sst2-zero-shot-calibrated", "zero-shot `classify --calibrate`")]:
    path = out / f"{name}.json"
    if path.exists():
        r = json.loads(path.read_text())
        print(f"| {label} | {r['accuracy']:.1f} | {r['macro_f1']:.1f} |")
for shots in (32, 256):
    path = out / f"sst2-pet-{shots}.json"
    if path.exists():
        s = json.loads(path.read_text())["summary"]
        print(f"| PET, {shots} examples (3 seeds) | {s['accuracy']['mean']:.1f} ± {s['accuracy']['std']:.1f} | {s['macro_f1']['mean']:.1f} ± {s['macro_f1']['std']:.1f} |")
acc = summary("sst2-pre", "accuracy")[0]
print(f"| full fine-tune (67,349 examples, 3 seeds) | {acc} | |")
print("| majority class (positive) | 50.9 | 33.7 |")
