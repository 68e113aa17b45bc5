#!/usr/bin/env bash
# GPU checks of the speed paths: one CUDA GPU, about 3-5 minutes. From the repository root:
#   bash benchmarks/gpu_check.sh            (PYTHON=/path/to/python to pick the interpreter)
# 1. trains end to end with trainer=gpu (bf16-mixed), data.on_device=true and model.compile=true;
# 2. loads that compiled run's checkpoint into a plain model on the CPU and into a compiled one on
#    the GPU, and checks both predict the same (state_dict keys carry no `_orig_mod.`);
# 3. prints throughput tables: CPU vs GPU, fp32 vs bf16-mixed, device-resident data off/on,
#    each against the hand-written loop measured in the same run (default and large MLP);
# 4. CIFAR-10-LT ResNet-32: seconds per epoch of the in-memory on-device path, the
#    DataLoader path (8 workers) and a hand-written ImageFolder loop; two presets train 3 epochs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH=$PWD/src HYDRA_FULL_ERROR=1
OUT=$(mktemp -d)
step() { echo; echo "=== $* ($(date +%T))"; }

step "device"
$PY -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; \
print(torch.__version__, torch.cuda.get_device_name(0), 'bf16:', torch.cuda.is_bf16_supported())"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

step "1. train: trainer=gpu (bf16-mixed) data.on_device=true model.compile=true"
$PY train.py trainer=gpu data.on_device=true model.compile=true trainer.max_epochs=3 \
  callbacks.progress_bar.refresh_rate=0 hydra.run.dir="$OUT/compiled" 2>&1 | tail -n 5
test -f "$OUT/compiled/metrics.json" && $PY -c "import json,sys; m=json.load(open(sys.argv[1])); \
print('test/balanced_accuracy', m['test/balanced_accuracy'])" "$OUT/compiled/metrics.json"

step "2. the compiled run's checkpoint loads with and without compile"
$PY - "$OUT/compiled/checkpoints/last.ckpt" <<'PYEOF'
import sys
import torch
from imbalanced.classifier import ImbalancedClassifier

path = sys.argv[1]
keys = list(torch.load(path, map_location="cpu", weights_only=True)["state_dict"])
assert not any("_orig_mod." in k for k in keys), keys
plain = ImbalancedClassifier.load_from_checkpoint(path, map_location="cpu").eval()
compiled = ImbalancedClassifier.load_from_checkpoint(path, map_location="cuda", compile=True).eval()
x = torch.randn(512, plain.hparams.backbone["in_features"]) * 3
with torch.no_grad():
    cpu_out, gpu_out = plain(x), compiled(x.cuda()).float().cpu()
print("max |cpu plain - gpu compiled| =", (cpu_out - gpu_out).abs().max().item())
assert torch.allclose(cpu_out, gpu_out, atol=1e-3, rtol=1e-3)
print("OK: identical keys, same predictions with and without compile")
PYEOF

step "3. throughput vs the hand-written loop (default workload, 3 epochs)"
run() { $PY benchmarks/throughput.py --threads 0 --repeats 2 "$@" 2>/dev/null | grep -v "^throughput =" \
  || echo "FAILED: throughput.py $* (rerun it alone to see the error)"; }
run --accelerator cpu --epochs 3
run --accelerator gpu --precision 32-true --epochs 3
run --accelerator gpu --precision bf16-mixed --epochs 3
run --accelerator gpu --precision bf16-mixed --on-device --epochs 3
run --accelerator gpu --precision 32-true --on-device --epochs 3

step "3b. throughput, large MLP (3x1024, 64 features, 2 epochs)"
run --workload large --accelerator cpu
run --workload large --accelerator gpu --precision 32-true
run --workload large --accelerator gpu --precision bf16-mixed
run --workload large --accelerator gpu --precision bf16-mixed --on-device

step "4. CIFAR-10-LT, ResNet-32, bf16-mixed, channels_last: seconds per epoch on each data path"
# Synthetic pixels in CIFAR's on-disk format (the machine may have no network): the real split sizes
# (12,406 training images), so seconds per epoch are those of the real dataset; accuracy is not.
MODEL=$( [ -f configs/model/resnet32.yaml ] && echo "--model resnet32" || echo "" )
$PY benchmarks/images.py --accelerator gpu --precision bf16-mixed --channels-last --on-device \
  --workers 8 --epochs 4 --repeats 1 --threads 0 $MODEL 2>/dev/null | tail -n 4 || echo "FAILED: benchmarks/images.py (rerun it alone)"
$PY - "$OUT/cifar" <<'PYEOF'
import sys
sys.path.insert(0, "tests")
from pathlib import Path
from cifar_tree import write_cifar_tree
write_cifar_tree(Path(sys.argv[1]), train_per_class=5000, test_per_class=1000)
PYEOF
for preset in cifar10_lt_ldam_drw cifar10_lt_logit_adjusted; do
  $PY train.py experiment=$preset data.root="$OUT/cifar" trainer=gpu trainer.precision=bf16-mixed \
    data.on_device=true data.channels_last=true trainer.max_epochs=3 callbacks.progress_bar.refresh_rate=0 \
    hydra.run.dir="$OUT/$preset" 2>&1 | tail -n 3 || echo "FAILED: train.py experiment=$preset"
done

step "done; run directory $OUT"
