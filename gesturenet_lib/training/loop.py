"""The training loop: one tf.function step run through a tf.distribute strategy.

Keras 3's ``Model.fit`` fails under ``MultiWorkerMirroredStrategy`` (keras-team/keras#20585),
so the loop is our own; the same code runs on one process (the default strategy) and on many.
An epoch is ``ceil(images / batch_size)`` global batches drawn from a repeated training set,
so every worker runs the same number of steps (a worker with fewer batches would hang the
others).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class EpochResult:
    epoch: int                 # 1-based
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    learning_rate: float
    images_per_s: float


def per_example_loss(loss_fn: str):
    import keras

    if loss_fn == "categorical_focal_crossentropy":
        return keras.losses.categorical_focal_crossentropy
    return keras.losses.categorical_crossentropy


def _step_functions(model, strategy, loss_of, class_weights: list[float] | None,
                    batch_size: int, train_acc, val_acc):
    """(train step, validation step): one batch on every replica, the loss summed."""
    import tensorflow as tf

    weights = tf.constant(class_weights or [], tf.float32)
    optimizer = model.optimizer

    def weighted(y, losses):
        if not class_weights:
            return losses
        return losses * tf.linalg.matvec(tf.cast(y, tf.float32), weights)

    @tf.function
    def train_step(batch):
        def train_replica(x, y):
            with tf.GradientTape() as tape:
                p = model(x, training=True)
                loss = tf.nn.compute_average_loss(weighted(y, loss_of(y, p)),
                                                  global_batch_size=batch_size)
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            grads = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            train_acc.update_state(y, p)
            return loss
        per_replica = strategy.run(train_replica, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    @tf.function
    def val_step(batch):
        def val_replica(x, y):
            p = model(x, training=False)
            val_acc.update_state(y, p)
            return tf.nn.compute_average_loss(loss_of(y, p), global_batch_size=batch_size)
        per_replica = strategy.run(val_replica, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return train_step, val_step


def run_stage(model, strategy, train_ds, val_ds, steps: int, val_steps: int, batch_size: int,
              loss_fn: str, initial_epoch: int, epochs: int,
              on_epoch_end: Callable[[EpochResult], None],
              class_weights: list[float] | None = None) -> None:
    """Train ``model`` (compiled: its optimizer is used) for epochs initial_epoch+1..epochs.
    ``class_weights`` scales each training example's loss by the weight of its class."""
    import keras

    optimizer = model.optimizer
    with strategy.scope():
        train_acc = keras.metrics.CategoricalAccuracy()
        val_acc = keras.metrics.CategoricalAccuracy()
    train_step, val_step = _step_functions(model, strategy, per_example_loss(loss_fn),
                                           class_weights, batch_size, train_acc, val_acc)
    train_dist = strategy.experimental_distribute_dataset(train_ds)
    val_dist = strategy.experimental_distribute_dataset(val_ds) if val_ds is not None else None
    # The training set is repeated and read by one iterator, so the next epoch's first batches
    # are prepared while this epoch ends. The validation set is repeated only on several
    # workers (equal step counts); on one process each epoch reads one finite pass.
    train_iter = iter(train_dist)
    val_repeated = val_ds is not None and val_ds.cardinality().numpy() == -1
    val_iter = iter(val_dist) if val_repeated else None
    show_bar = sys.stderr.isatty()
    for epoch in range(initial_epoch, epochs):
        start = time.perf_counter()
        train_acc.reset_state()
        bar = keras.utils.Progbar(steps, stateful_metrics=["loss", "accuracy"]) if show_bar \
            else None
        total = 0.0
        for step in range(steps):
            total += float(train_step(next(train_iter)))
            if bar is not None:
                bar.update(step + 1, [("loss", total / (step + 1)),
                                      ("accuracy", float(train_acc.result()))])
        seconds = time.perf_counter() - start
        val_loss = val_accuracy = None
        if val_dist is not None and val_steps:
            val_acc.reset_state()
            val_batches = val_iter if val_repeated else iter(val_dist)
            val_total = sum(float(val_step(next(val_batches))) for _ in range(val_steps))
            val_loss, val_accuracy = val_total / val_steps, float(val_acc.result())
        learning_rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        on_epoch_end(EpochResult(epoch + 1, total / steps, float(train_acc.result()), val_loss,
                                 val_accuracy, learning_rate,
                                 steps * batch_size / seconds))
