"""The LightningModule: wraps any backbone, owns the class-weight buffers, loss and metrics."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from imbalanced.data.class_statistics import ClassStatistics
from imbalanced.data.contract import DataContract
from imbalanced.errors import UserError
from imbalanced.longtail.losses import DEFAULT_LOSS, ImbalanceLoss, per_class_mean
from imbalanced.longtail.mixed_targets import mixed_loss
from imbalanced.longtail.prediction_policy import PredictionPolicy, gather_rows
from imbalanced.metrics import RareEventMetrics, classification_metrics, per_class_key
from imbalanced.optimization import RunLength, build_optimizer, build_scheduler
from imbalanced.runs.runtime import compile_in_place, strip_compile_prefix
from imbalanced.sparse_logging import SparseLossLog

log = logging.getLogger(__name__)


def _plain(value: Any) -> Any:
    """Hydra passes DictConfig/ListConfig; checkpoints should hold plain containers."""
    if isinstance(value, (DictConfig, Mapping)) or OmegaConf.is_list(value):
        return OmegaConf.to_container(OmegaConf.create(value), resolve=True)
    return value


class ImbalancedClassifier(L.LightningModule):
    """Wraps any backbone; knows nothing about the data beyond the number and names of the classes.

    What it takes from the data is the datamodule's `DataContract` (data/contract.py): the training
    split's `ClassStatistics` (counts and weights, copied into the `class_weights` / `class_counts`
    buffers), and optionally an `input_transform` module config (e.g. a table's standardization)
    whose fitted buffers the contract carries. Everything
    needed to predict travels in the checkpoint: backbone, input transform and loss configs and class
    names (hyperparameters), the buffers (state_dict), and `data`, which the module only carries: the
    data config and input spec `eval.py` / `predict.py` use to rebuild inputs. Buffers are registered
    here with their final shapes and filled with `copy_` in `setup`, so
    `ImbalancedClassifier.load_from_checkpoint(path)` works alone and predicts from raw inputs.
    """

    def __init__(
        self,
        num_classes: int,
        backbone: Mapping[str, Any],
        loss: Mapping[str, Any] | None = None,
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        class_names: Sequence[str] | None = None,
        class_statistics: ClassStatistics | None = None,
        input_transform: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        compile: bool | Mapping[str, Any] = False,
    ) -> None:
        super().__init__()
        backbone, loss, optimizer = _plain(backbone), _plain(loss or DEFAULT_LOSS), _plain(optimizer)
        if class_names is None and class_statistics is not None:
            class_names = class_statistics.class_names
        class_names = list(_plain(class_names) or [str(i) for i in range(num_classes)])
        if len(class_names) != num_classes:
            raise UserError(f"{len(class_names)} class names given for {num_classes} classes")
        self.save_hyperparameters(
            {
                "num_classes": num_classes,
                "backbone": backbone,
                "loss": loss,
                "optimizer": optimizer,
                "scheduler": _plain(scheduler),
                "class_names": class_names,
                "input_transform": _plain(input_transform),
                # carried, never read here: how eval.py / predict.py rebuild inputs (tasks/from_checkpoint.py)
                "data": _plain(data),
            }
        )
        self.backbone = instantiate(backbone, num_classes=num_classes)
        # input preparation fitted on the training data (None: the backbone takes the inputs as they are)
        self.input_transform = instantiate(_plain(input_transform)) if input_transform else None
        self.criterion: ImbalanceLoss = instantiate(loss)
        self.register_buffer("class_weights", torch.ones(num_classes))
        self.register_buffer("class_counts", torch.zeros(num_classes))
        if class_statistics is not None:
            self.load_class_statistics(class_statistics)
        self.val_metrics = classification_metrics(num_classes).clone(prefix="val/")
        self.test_metrics = classification_metrics(num_classes).clone(prefix="test/")
        # post-hoc logit adjustment at validation/test/predict: logits - tau * log(prior) (0 = off);
        # set by train.py and saved in checkpoints, so eval.py / predict.py reproduce the run unless
        # they override it
        self.posthoc_tau: float = 0.0
        # calibrated probabilities and the (binary) decision threshold, refitted on validation at
        # every validation epoch of `fit` and saved in checkpoints (longtail/prediction_policy.py)
        self.prediction_policy = PredictionPolicy(num_classes)
        self.val_rare_metrics = RareEventMetrics(num_classes, prefix="val/")
        self.test_rare_metrics = RareEventMetrics(num_classes, prefix="test/")
        self._val_outputs: list[tuple[Tensor, Tensor]] = []
        self._test_outputs: list[tuple[Tensor, ...]] = []
        self.test_outputs: dict[str, Any] | None = None  # test probabilities of all ranks, for plots
        self.predict_decisions = False  # predict_step returns {"probabilities", "prediction"} if True
        self._loss_sums = torch.zeros(num_classes)
        self._loss_counts = torch.zeros(num_classes)
        self._train_loss = SparseLossLog("train/loss")
        # A run-time choice, not a hyperparameter: checkpoints are identical with or without it.
        compile_in_place(self.backbone, _plain(compile))

    @property
    def class_names(self) -> list[str]:
        return list(self.hparams.class_names)

    # ---- data-derived state -------------------------------------------------------------
    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule if self._trainer else None
        if stage == "fit" and datamodule is not None:
            self.load_data_contract(datamodule.contract())

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["posthoc_tau"] = float(self.posthoc_tau)
        checkpoint["prediction_policy"] = self.prediction_policy.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.posthoc_tau = float(checkpoint.get("posthoc_tau", 0.0))
        self.prediction_policy.load_state_dict(checkpoint.get("prediction_policy"))
        # Checkpoints written from a `torch.compile(model)` wrapper carry `_orig_mod.` in their keys.
        strip_compile_prefix(checkpoint["state_dict"])

    def on_fit_start(self) -> None:
        # Every rank computed its weights from its own (seeded) split: prove they agree.
        weights = ", ".join(f"{w:.4g}" for w in self.class_weights.tolist())  # float32 digits are noise
        log.info("rank %d class_weights [%s]", self.global_rank, weights)
        if self.trainer.world_size > 1:
            gathered = self.all_gather(self.class_weights)
            if not torch.equal(gathered, self.class_weights.expand_as(gathered)):
                raise RuntimeError(
                    f"class weights differ across DDP ranks: {gathered.tolist()}; the data split "
                    "must be deterministic (set data.seed) so every rank sees the same training split"
                )

    def load_data_contract(self, contract: DataContract) -> None:
        """Copy the training split's class statistics and the fitted input transform state."""
        self.load_class_statistics(contract.class_statistics)
        state = contract.input_transform_state
        if state and self.input_transform is None:
            raise UserError("the data gives a fitted input transform but the model was built without one")
        for name, value in state.items():
            self._copy_into(f"input_transform.{name}", self.input_transform.get_buffer(name), value)

    def load_class_statistics(self, statistics: ClassStatistics) -> None:
        self._copy_into("class_weights", self.class_weights, statistics.weights)
        self._copy_into("class_counts", self.class_counts, statistics.counts)

    @staticmethod
    def _copy_into(name: str, buffer: Tensor, value: Any) -> None:
        value = torch.as_tensor(value, dtype=buffer.dtype)
        if value.shape != buffer.shape:
            raise UserError(
                f"the data gives {name} of shape {tuple(value.shape)} but the model was built "
                f"for {tuple(buffer.shape)}; the data changed between building the model and fitting it"
            )
        buffer.copy_(value)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        # In-memory batches already on `device` (CPU training, data.on_device=true) need no move;
        # skipping Lightning's generic walk over the batch saves a fixed cost on every step.
        if isinstance(batch, (tuple, list)) and all(
            isinstance(item, Tensor) and item.device == device for item in batch
        ):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    # ---- forward / steps ----------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Logits for raw inputs (as the datamodule serves them)."""
        if self.input_transform is not None:
            x = self.input_transform(x)
        return self.backbone(x)

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        if len(batch) == 4:  # a MixUp/CutMix batch (x, y_a, y_b, lam): data/images/mixing.py
            return self._mixed_training_step(*batch)
        x, y = batch
        logits = self(x)
        loss = self.criterion(logits, y, self.class_weights, self.class_counts)
        if loss.ndim:  # reduction="none": per-sample weighted losses
            sums, counts = per_class_mean(loss, y, self.hparams.num_classes)
            self._loss_sums = self._loss_sums.to(sums.device) + sums
            self._loss_counts = self._loss_counts.to(counts.device) + counts
            loss = self.criterion.normalize(loss, y, self.class_weights)
        self._train_loss.step(self, loss)  # logged every trainer.log_every_n_steps, no sync per step
        return loss

    def _mixed_training_step(self, x: Tensor, y_a: Tensor, y_b: Tensor, lam: float) -> Tensor:
        loss, sums, shares = mixed_loss(
            self.criterion, self(x), y_a, y_b, lam, self.class_weights, self.class_counts
        )
        if self.criterion.reduction == "none":
            self._loss_sums = self._loss_sums.to(sums.device) + sums
            self._loss_counts = self._loss_counts.to(shares.device) + shares
        self._train_loss.step(self, loss)
        return loss

    def on_train_epoch_end(self) -> None:
        self._train_loss.log_epoch(self)
        if self.criterion.reduction != "none":
            return
        sums = self.trainer.strategy.reduce(self._loss_sums, reduce_op="sum")
        counts = self.trainer.strategy.reduce(self._loss_counts, reduce_op="sum")
        for index, (total, count) in enumerate(zip(sums.tolist(), counts.tolist(), strict=True)):
            if count > 0:
                self.log(f"train/class_loss/{index}", total / count, on_epoch=True)
        self._loss_sums = torch.zeros_like(self._loss_sums)
        self._loss_counts = torch.zeros_like(self._loss_counts)

    def _eval_step(
        self, batch: tuple[Tensor, Tensor], metrics: Any, rare_metrics: RareEventMetrics | None = None
    ) -> Tensor:
        x, y = batch
        return self._update_metrics(self(x), y, metrics, rare_metrics)

    def _update_metrics(
        self, logits: Tensor, y: Tensor, metrics: Any, rare_metrics: RareEventMetrics | None
    ) -> Tensor:
        """Update the metrics with the decision (threshold / argmax); returns the decision scores."""
        policy = self.prediction_policy
        policy.know_counts(self.class_counts)
        decision_logits = policy.decision_logits(logits, self.class_counts, self.posthoc_tau)
        metrics.update(decision_logits, y)
        if rare_metrics is not None:
            probabilities = policy.probabilities(logits, self.class_counts, self.posthoc_tau)
            raw = policy.raw_probabilities(logits, self.class_counts, self.posthoc_tau)
            rare_metrics.update(probabilities, raw, decision_logits.argmax(-1), y, policy._positive())
            if rare_metrics is self.test_rare_metrics:
                self._test_outputs.append((probabilities.detach(), raw.detach(), y))
        return decision_logits

    def _fits_policy(self) -> bool:
        """Validation inside `fit` (not the sanity check) refits calibration and threshold."""
        trainer = self._trainer
        return trainer is not None and trainer.state.fn == "fit" and not trainer.sanity_checking

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        if self._fits_policy():  # metrics wait for the epoch's fit
            x, y = batch
            self._val_outputs.append((self(x).detach(), y))
            return
        self._eval_step(batch, self.val_metrics, self.val_rare_metrics)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        # the decision scores, for callbacks (confusion matrix)
        return self._eval_step(batch, self.test_metrics, self.test_rare_metrics)

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        logits = self(x).float()
        policy = self.prediction_policy
        policy.know_counts(self.class_counts)
        probabilities = policy.probabilities(logits, self.class_counts, self.posthoc_tau)
        if not self.predict_decisions:
            return probabilities
        decisions = policy.decision_logits(logits, self.class_counts, self.posthoc_tau).argmax(-1)
        return {"probabilities": probabilities, "prediction": decisions}

    def _log_epoch_metrics(self, metrics: Any, stage: str) -> None:
        values = metrics.compute()  # synced across ranks by torchmetrics
        per_class = values.pop(f"{stage}/per_class_recall")
        logged = {key: value.float() for key, value in values.items()}
        logged.update({per_class_key(stage, i): v for i, v in enumerate(per_class.float())})
        self.log_dict(logged, prog_bar=False, sync_dist=True)
        metrics.reset()

    def _log_rare_metrics(self, metrics: RareEventMetrics) -> None:
        self.log_dict(metrics.compute(), prog_bar=False, sync_dist=True)  # synced by torchmetrics
        metrics.reset()

    def on_validation_epoch_end(self) -> None:
        if self._val_outputs:
            logits = torch.cat([out[0] for out in self._val_outputs])
            labels = torch.cat([out[1] for out in self._val_outputs])
            self._val_outputs = []
            every_logit, every_label = gather_rows(self, logits, labels)  # the whole split, all ranks
            if not bool(torch.isfinite(every_logit).all()):  # before ModelCheckpoint saves this model
                from imbalanced.runs.safeguards import non_finite_model_error

                raise non_finite_model_error(self.trainer, self, "the model gives NaN/inf validation logits")
            self.prediction_policy.fit(
                every_logit, every_label, self.class_counts, self.class_weights, self.criterion
            )
            self._update_metrics(logits, labels, self.val_metrics, self.val_rare_metrics)
        self._log_epoch_metrics(self.val_metrics, "val")
        self._log_rare_metrics(self.val_rare_metrics)

    def on_test_epoch_start(self) -> None:
        self._test_outputs, self.test_outputs = [], None

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics(self.test_metrics, "test")
        self._log_rare_metrics(self.test_rare_metrics)
        if self._test_outputs:
            columns = [torch.cat([out[i] for out in self._test_outputs]) for i in range(3)]
            probabilities, raw, labels = gather_rows(self, *columns)
            self.test_outputs = {
                "probabilities": probabilities.cpu().numpy(),
                "raw_probabilities": raw.cpu().numpy(),
                "labels": labels.cpu().numpy(),
            }
        self._test_outputs = []

    # ---- optimization -------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        """The `optimizer` and `scheduler` configs (imbalanced/optimization.py); default: AdamW."""
        optimizer = build_optimizer(self.hparams.optimizer, self.parameters())
        schedule = build_scheduler(self.hparams.scheduler, optimizer, lambda: RunLength.of(self.trainer))
        return optimizer if schedule is None else {"optimizer": optimizer, "lr_scheduler": schedule}
