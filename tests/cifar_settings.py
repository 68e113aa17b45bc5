"""Settings that let CIFAR-LT configs run on a tiny CIFAR tree the test writes.

The backbone: the CIFAR presets train their own `model=resnet32` / `resnet32_cosine`; the plain data
options train the fork example's tiny CNN (tests/fork_example, through Hydra's search path), which is
faster and needs nothing of a preset.
"""

from __future__ import annotations

from pathlib import Path

from cifar_tree import write_cifar_tree

FORK_CONFIGS = Path(__file__).resolve().parent / "fork_example" / "configs"


def tiny_cifar_settings(root: Path, variant: str, preset: bool = False) -> list[str]:
    """Overrides for data=cifar10_lt / cifar100_lt (or a CIFAR experiment) on a written tiny tree."""
    if not (root / ("cifar-10-batches-py" if variant == "cifar10" else "cifar-100-python")).is_dir():
        write_cifar_tree(root, variant, train_per_class=12, test_per_class=2)
    settings = [f"data.root={root}", "data.n_max=10", "data.val_per_class=2", "data.eval_batch_size=256"]
    if not preset:
        settings += [f"hydra.searchpath=[file://{FORK_CONFIGS}]", "model=tiny_cnn"]
    return settings


def cifar_needed(group: str, option: str, root: Path) -> list[str]:
    """`needed()` of tests/test_config_groups.py for the CIFAR options ([] for the others)."""
    if (group == "data" or group == "experiment") and option.startswith("cifar"):
        variant = "cifar100" if option.startswith("cifar100") else "cifar10"
        return tiny_cifar_settings(root / variant, variant, preset=group == "experiment")
    return []
