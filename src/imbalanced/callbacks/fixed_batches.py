"""Fixed training batches for `debug=overfit`."""

from __future__ import annotations

import lightning as L


class FixedTrainBatches(L.Callback):
    """Turns off the training shuffle so that, with `trainer.limit_train_batches=N`, every epoch sees
    the same N batches (what `debug=overfit` needs).

    Lightning's own `trainer.overfit_batches` swaps the loader's sampler for a `SequentialSampler`,
    which breaks index-batched loaders (the template's `IndexBatchSampler` yields whole batches of
    indices); this callback keeps the loader and only stops its shuffling.
    """

    def __init__(self) -> None:
        self._fixed_by_datamodule = False

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The template's datamodules build the train plan unshuffled from the start (a DataLoader with
        # workers draws the first epoch's indices before on_train_start); others are fixed below.
        datamodule = getattr(trainer, "datamodule", None)
        self._fixed_by_datamodule = hasattr(datamodule, "fixed_train_order")
        if self._fixed_by_datamodule:
            datamodule.fixed_train_order = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._fixed_by_datamodule:
            return
        loaders = trainer.train_dataloader
        for loader in loaders if isinstance(loaders, (list, tuple)) else [loaders]:
            samplers = [getattr(loader, "batch_sampler", None), getattr(loader, "sampler", None)]
            fixed = False
            for sampler in samplers:
                if hasattr(sampler, "shuffle"):
                    sampler.shuffle = False
                    fixed = True
            if not fixed:
                raise RuntimeError(
                    f"FixedTrainBatches: the train loader's sampler ({type(loader.sampler).__name__}) has "
                    "no `shuffle` attribute; use trainer.overfit_batches with a plain DataLoader instead"
                )
