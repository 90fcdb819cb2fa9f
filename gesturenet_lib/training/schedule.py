"""TAO's step learning-rate schedule.

progress = iteration / max_iterations (in percent); the rate starts at ``initial_lrate`` and is
multiplied by ``lr_drop_rate`` every ``decay_step_size`` percent of progress:

    lr(i) = initial_lrate * lr_drop_rate ** floor(100 * i / max_iterations / decay_step_size)
"""

from __future__ import annotations

import math

import keras


def step_lr(iteration: int, max_iterations: int, initial_lrate: float, decay_step_size: float,
            lr_drop_rate: float) -> float:
    progress = 100.0 * iteration / max(1, max_iterations)
    return initial_lrate * lr_drop_rate ** math.floor(progress / decay_step_size + 1e-9)


@keras.saving.register_keras_serializable(package="gesturenet")
class StepSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """``step_lr`` as a Keras schedule, so the optimizer's own iteration count drives it (and a
    resumed run continues the schedule where it stopped)."""

    def __init__(self, max_iterations: int, initial_lrate: float, decay_step_size: float,
                 lr_drop_rate: float):
        self.max_iterations = int(max_iterations)
        self.initial_lrate = float(initial_lrate)
        self.decay_step_size = float(decay_step_size)
        self.lr_drop_rate = float(lr_drop_rate)

    def __call__(self, step):
        from keras import ops

        progress = 100.0 * ops.cast(step, "float32") / max(1, self.max_iterations)
        drops = ops.floor(progress / self.decay_step_size + 1e-6)
        return self.initial_lrate * ops.power(self.lr_drop_rate, drops)

    def get_config(self):
        return {"max_iterations": self.max_iterations, "initial_lrate": self.initial_lrate,
                "decay_step_size": self.decay_step_size, "lr_drop_rate": self.lr_drop_rate}
