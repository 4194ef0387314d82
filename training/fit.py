"""``livedroid train fit``: fine-tune (or train from scratch) with the Object Detection API's TF2
training step, with a progress bar, TensorBoard logs, periodic checkpoints, resume, a clean
Ctrl-C, and a guard that catches a blow-up within the step (training/loss_guard.py).

The loop is ``model_lib_v2.train_loop`` reduced to what livedroid needs, built from the API's own
pieces (``inputs.train_input``, ``eager_train_step``, ``load_fine_tune_checkpoint``) and the same
checkpoint layout (``Checkpoint(step, model, optimizer)``), so the API's exporters read its
checkpoints. ``train_loop`` itself runs 100 steps per loop iteration, logs every 100 steps and
keeps its checkpoint manager private, so it can neither drive a per-step progress bar nor save
on Ctrl-C.
"""

from __future__ import annotations

import csv
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from livedroid.errors import UserError
from livedroid.signals import StopOnSignals
from livedroid.training.loss_guard import Diverged, Guard, TERMS
from livedroid.training.pipeline import load_pipeline, save_pipeline

TRAIN_LOG_DIR = "train"  # TensorBoard event files, and the loss table below
LOSS_TABLE = "losses.csv"
GUARD_LOG = "guard.log"  # one line per blow-up the guard caught, beside the loss table
LOSS_COLUMNS = ("step", "total_loss", "classification_loss", "localization_loss", "regularization_loss", "learning_rate")


@dataclass
class FitResult:
    model_dir: Path
    step: int
    interrupted: bool
    seconds_per_step: float | None  # mean after the first step of this run (which traces the graph)


def fit(model_dir: Path, config=None, *, checkpoint_every: int = 500, keep_checkpoints: int = 5) -> FitResult:
    """Train up to the pipeline's ``num_steps``. ``config`` starts a new run (saved in
    ``model_dir`` once its start checkpoint has loaded, so a failed start leaves no run behind);
    without it the run saved in ``model_dir`` resumes from its newest checkpoint. Uses every
    visible GPU (MirroredStrategy) when there are several."""
    from livedroid.training.compat import tf
    from object_detection import inputs, model_lib_v2
    from object_detection.builders import model_builder, optimizer_builder

    model_dir = Path(model_dir)
    new_run, config = config is not None, config or load_pipeline(model_dir)
    train_config = config.train_config
    strategy = _strategy(tf)
    if train_config.batch_size % strategy.num_replicas_in_sync:
        raise UserError(f"batch size {train_config.batch_size} must be a multiple of the {strategy.num_replicas_in_sync} GPUs")

    with strategy.scope():
        # The model's own TF1 summaries (histograms) would warn and slow every step; the losses,
        # learning rate and speed are logged below.
        model = model_builder.build(config.model, is_training=True, add_summaries=False)
        dataset = strategy.distribute_datasets_from_function(
            lambda context: inputs.train_input(
                train_config=train_config,
                train_input_config=config.train_input_reader,
                model_config=config.model,
                model=model,
                input_context=context,
            ).repeat()
        )
        step = tf.Variable(0, trainable=False, dtype=tf.int64, name="global_step", aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        optimizer, (schedule,) = optimizer_builder.build(train_config.optimizer, global_step=step)
        # The guard's cuts: kept in the checkpoint, so a resumed run keeps the rate that held.
        learning_rate_scale = tf.Variable(1.0, trainable=False, name="learning_rate_scale", aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

        def learning_rate():
            return (schedule() if callable(schedule) else schedule) * learning_rate_scale

        optimizer.learning_rate = learning_rate
        checkpoint = tf.train.Checkpoint(step=step, model=model, optimizer=optimizer, learning_rate_scale=learning_rate_scale)
        manager = tf.train.CheckpointManager(checkpoint, str(model_dir), max_to_keep=keep_checkpoints)
        _start_weights(tf, checkpoint, manager, model, train_config, dataset)
        if not _variables_built(model):  # from scratch, or a resume's restore waiting for them
            model_lib_v2._ensure_model_is_built(model, dataset, train_config.unpad_groundtruth_tensors)
        frozen = _freeze_layers(model, train_config.freeze_variables)
        if frozen:
            print(f"frozen: the first {frozen} layers of the backbone (generic features; faster steps)")
        if new_run:
            save_pipeline(config, model_dir)

        train_step = _train_step(tf, strategy, model, optimizer, step, train_config)
        guard = Guard(lambda: model.variables + optimizer.variables(), learning_rate_scale, int(step.numpy()))
        print(guard.describe())
        return _run(tf, train_step, iter(dataset), step, learning_rate, manager, model_dir, train_config.num_steps, checkpoint_every, guard)


def _start_weights(tf, checkpoint, manager, model, train_config, dataset) -> None:
    """Resume from the run's newest checkpoint, else start from the fine-tune checkpoint if any."""
    from object_detection import model_lib_v2

    if manager.latest_checkpoint:
        checkpoint.restore(manager.latest_checkpoint)
        print(f"resuming from {manager.latest_checkpoint}")
    elif train_config.fine_tune_checkpoint:
        print(f"starting from {train_config.fine_tune_checkpoint} ({train_config.fine_tune_checkpoint_type})")
        try:
            model_lib_v2.load_fine_tune_checkpoint(
                model,
                train_config.fine_tune_checkpoint,
                train_config.fine_tune_checkpoint_type,
                train_config.fine_tune_checkpoint_version,
                train_config.run_fine_tune_checkpoint_dummy_computation,
                dataset,
                train_config.unpad_groundtruth_tensors,
            )
        except (AssertionError, ValueError, OSError, tf.errors.OpError) as error:
            raise UserError(
                f"cannot start from {train_config.fine_tune_checkpoint}: it does not fit this model's "
                f"architecture ({str(error).splitlines()[0][:200]}); pass the --model template the "
                "checkpoint was trained with, or a --config of its pipeline"
            ) from None
        _restore_box_encoder(tf, model, train_config.fine_tune_checkpoint)


def _variables_built(model) -> bool:
    """Whether the model's variables exist, as the guard's first copy needs before the first step."""
    try:
        return bool(model.variables)
    except ValueError:  # "Weights for model ... have not yet been created"
        return False


def _train_step(tf, strategy, model, optimizer, step, train_config):
    """One distributed training step (the API's ``eager_train_step`` on each replica), compiled."""
    from object_detection import model_lib_v2

    @tf.function
    def train_step(iterator):
        def replica_step(features, labels):
            losses = model_lib_v2.eager_train_step(
                model,
                features,
                labels,
                train_config.unpad_groundtruth_tensors,
                optimizer,
                training_step=step,
                add_regularization_loss=train_config.add_regularization_loss,
                clip_gradients_value=train_config.gradient_clipping_by_norm or None,
                num_replicas=strategy.num_replicas_in_sync,
            )
            step.assign_add(1)
            return losses

        features, labels = next(iterator)
        per_replica = strategy.run(replica_step, args=(features, labels))
        return model_lib_v2.reduce_dict(strategy, per_replica, tf.distribute.ReduceOp.SUM)

    return train_step


def _run(tf, train_step, iterator, step, learning_rate, manager, model_dir, total_steps, checkpoint_every, guard) -> FitResult:
    """The loop: one step, its losses to TensorBoard, the CSV and the bar, judged by the guard;
    checkpoints on schedule, at the end and on Ctrl-C."""
    log_dir = model_dir / TRAIN_LOG_DIR
    log_dir.mkdir(parents=True, exist_ok=True)
    writer = tf.summary.create_file_writer(str(log_dir))
    start = int(step.numpy())
    durations = []
    with _stop_on_interrupt() as stop, writer.as_default(), _loss_table(log_dir / LOSS_TABLE) as table, tqdm(
        total=total_steps, initial=start, desc="training", unit="step"
    ) as bar:
        while int(step.numpy()) < total_steps and not stop.is_set():
            began = time.perf_counter()
            losses = {name: float(value) for name, value in train_step(iterator).items()}
            durations.append(time.perf_counter() - began)
            current = int(step.numpy())
            rate = float(learning_rate())
            for name, value in {**losses, "learning_rate": rate, "steps_per_sec": 1 / durations[-1]}.items():
                tf.summary.scalar(name, value, step=current)
            table.writerow([current] + [losses.get(f"Loss/{c}", "") for c in LOSS_COLUMNS[1:5]] + [rate])
            bar.set_postfix(_bar_losses(losses) | {"lr": f"{rate:.2g}"}, refresh=False)
            bar.update(1)
            try:
                event = guard.after_step(current, losses)
            except Diverged as diverged:
                _log_guard(log_dir, str(diverged))
                raise UserError(_stop_line(str(diverged), _save_good(step, guard, manager), model_dir)) from None
            if event:
                _log_guard(log_dir, event)
                bar.write(f"guard: {event}")
            if current % checkpoint_every == 0:
                manager.save(checkpoint_number=current)
    final = int(step.numpy())
    if manager.latest_checkpoint is None or not manager.latest_checkpoint.endswith(f"-{final}"):
        manager.save(checkpoint_number=final)
    if stop.is_set():
        print(f"stopped at step {final}; checkpoint saved in {model_dir}; run the same command to resume")
    timed = durations[1:]
    return FitResult(model_dir, final, stop.is_set(), sum(timed) / len(timed) if timed else None)


def _bar_losses(losses: dict[str, float]) -> dict[str, str]:
    """The terms apart (a total hides a blown-up regularization term behind falling data losses)."""
    short = {"classification": "cls", "localization": "loc", "regularization": "reg"}
    return {short[name]: f"{losses[key]:.3g}" for name, key in TERMS.items() if key in losses}


def _log_guard(log_dir: Path, line: str) -> None:
    with open(log_dir / GUARD_LOG, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _save_good(step, guard: Guard, manager) -> str:
    """Save the good weights the guard put back, as the checkpoint of their own step (the newest
    one, so export and resume take it)."""
    step.assign(guard.good.step)
    return manager.save(checkpoint_number=guard.good.step)


def _stop_line(what: str, checkpoint: str, model_dir: Path) -> str:
    return (f"training stopped: {what}. The weights of step {checkpoint.rsplit('-', 1)[-1]}, before it, are saved as "
            f"{checkpoint}: export them with 'livedroid train export --run {model_dir} --out models/NAME', or start "
            "again with a lower --learning-rate")


@contextmanager
def _loss_table(path: Path):
    """Append rows to the CSV of losses (kept across resumed runs; the loss curve reads it)."""
    new = not path.is_file()
    with open(path, "a", newline="", encoding="utf-8") as stream:
        table = csv.writer(stream)
        if new:
            table.writerow(LOSS_COLUMNS)
        yield table


@contextmanager
def _stop_on_interrupt():
    """The first Ctrl-C (or SIGTERM) asks the loop to stop after the current step, which is then
    saved; a second one interrupts at once (livedroid's one signal helper)."""
    stop = threading.Event()
    with StopOnSignals(stop.set, finishing="saving a checkpoint after this step"):
        yield stop


def _restore_box_encoder(tf, model, checkpoint_prefix: str) -> None:
    """Also start the SSD box-regression head from the checkpoint when its shapes fit.

    The API's ``detection`` fine-tuning restores the feature extractor only. The box encoder is
    class-agnostic (4 offsets per anchor), so COCO's localisation carries over to any classes;
    only the class head has to be learnt from the new photos."""
    heads = getattr(getattr(model, "_box_predictor", None), "_prediction_heads", None)
    if not heads or "box_encodings" not in heads:
        return
    box_encodings = list(heads["box_encodings"])
    predictor = tf.train.Checkpoint(_prediction_heads=tf.train.Checkpoint(box_encodings=box_encodings))
    try:
        status = tf.train.Checkpoint(model=tf.train.Checkpoint(_box_predictor=predictor)).restore(checkpoint_prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        print(f"box-regression head: not restored ({str(error).splitlines()[0][:120]}); it starts from random values")
        return
    print("box-regression head: restored from the start checkpoint")


def _freeze_layers(model, patterns) -> int:
    """Mark the backbone layers whose weights match ``train_config.freeze_variables`` (regular
    expressions) as not trainable; returns how many. Gradients then stop above them, which makes
    each step cheaper (the early, high-resolution layers cost the most)."""
    import re

    backbone = getattr(getattr(model, "_feature_extractor", None), "classification_backbone", None)
    if not patterns or backbone is None:
        return 0
    frozen = 0
    for layer in backbone.layers:
        if layer.weights and any(re.search(p, w.name) for p in patterns for w in layer.weights):
            layer.trainable = False
            frozen += 1
    return frozen


def _strategy(tf):
    gpus = tf.config.list_physical_devices("GPU")
    return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
