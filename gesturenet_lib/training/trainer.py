"""`train`: two-stage training of the GestureNet classifier, resumable after any kill.

Outputs in ``<output_experiments_fld>/<save_weights_path>/``:
  model.tlt          the trained model, encrypted with the key (written last, by the chief)
  train_spec.json    the spec it was trained with;  classes.json  the class map
  metrics.csv        one row per epoch: stage, epoch, loss, accuracy, val_loss, val_accuracy,
                     learning rate, images/s
  tensorboard/       TensorBoard event files
  checkpoints/       last.ckpt (model + optimizer state, encrypted with the key like model.tlt)
                     and state.json (stage, epoch, history), both replaced atomically after
                     every epoch; a resume decrypts last.ckpt, so a different key is refused

Stages run in ``stage_order``; a stage with 0 epochs is skipped. In a stage, the last
``num_layers_unfreeze`` layers *with weights* train (BatchNormalization layers count, as do
convolutions and the classifier); the others are frozen (frozen BatchNorm layers use their
moving statistics). ``num_layers_unfreeze: 0`` trains every layer.
"""

from __future__ import annotations

import csv
import functools
import io as _text_io
import json
import logging
from dataclasses import dataclass

from gesturenet_lib import crypto, io, local_files
from gesturenet_lib.errors import UserInputError
from gesturenet_lib.specs import Experiment, dumps
from gesturenet_lib.specs.experiment import ExperimentSpec, TrainingStage

log = logging.getLogger(__name__)

MODEL_FILE = "model.tlt"  # the trained model's name in the output folder


def model_path(model_dir: str) -> str:
    """The trained model in an output folder (a spec's, or a pipeline's model artifact)."""
    return io.join(model_dir, MODEL_FILE)


CSV_FIELDS = ("stage", "epoch", "loss", "accuracy", "val_loss", "val_accuracy",
              "learning_rate", "images_per_s")


@dataclass(frozen=True)
class TrainResult:
    output_dir: str
    model_path: str
    history: list[dict]
    classes: list[str]              # in index order
    input_dims: list[int]           # the model's input without the batch, in its layout

    @property
    def last_epoch(self) -> dict[str, float]:
        """The last epoch's loss and accuracy (and validation's, when there was a set)."""
        last = self.history[-1] if self.history else {}
        return {name: last[name] for name in ("loss", "accuracy", "val_loss", "val_accuracy")
                if last.get(name) is not None}


@dataclass(frozen=True)
class StagePlan:
    name: str
    stage: TrainingStage


def plan_stages(spec: ExperimentSpec) -> list[StagePlan]:
    stages = [StagePlan("top_training", spec.trainer.top_training),
              StagePlan("finetuning", spec.trainer.finetuning)]
    return [s for s in sorted(stages, key=lambda s: s.stage.stage_order)
            if s.stage.train_epochs > 0]


def weighted_layers(model) -> list:
    return [layer for layer in model.layers if layer.weights]


def set_trainable(model, num_layers_unfreeze: int) -> None:
    """Freeze all but the last ``num_layers_unfreeze`` layers with weights (0: train all)."""
    layers = weighted_layers(model)
    cut = 0 if num_layers_unfreeze <= 0 else max(0, len(layers) - num_layers_unfreeze)
    for i, layer in enumerate(layers):
        layer.trainable = i >= cut


def make_optimizer(stage: TrainingStage, max_iterations: int):
    import keras

    from gesturenet_lib.training.schedule import StepSchedule

    lr = StepSchedule(max_iterations, stage.initial_lrate, stage.decay_step_size,
                      stage.lr_drop_rate)
    if stage.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    if stage.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    return keras.optimizers.RMSprop(learning_rate=lr)


def make_loss(stage: TrainingStage):
    import keras

    if stage.loss_fn == "categorical_focal_crossentropy":
        return keras.losses.CategoricalFocalCrossentropy()
    return keras.losses.CategoricalCrossentropy()


def build_model(spec: ExperimentSpec):
    """A fresh, untrained model of the spec's family."""
    from gesturenet_lib.families import family

    return family(spec.model.base_model).build(spec)


def _initial_model(exp: Experiment, key: str | None):
    """A fresh model, or the one named by ``weights_init`` (new head when asked)."""
    from gesturenet_lib.families import keras_objects
    from gesturenet_lib.models.model_file import load_model_file

    spec, num_classes = exp.spec, exp.spec.dataset.num_classes
    model = build_model(spec)
    if not exp.weights_init:
        return model
    path = exp.weights_init
    given = f"model.weights_init = {json.dumps(spec.model.weights_init)}"
    ngc = ("NGC's pretrained GestureNet model.tlt is encrypted with NVIDIA TAO's closed cipher "
           "and cannot be read by this tool: remove model.weights_init to train from scratch, "
           "or name a .tlt/.keras model this tool trained")
    if not io.exists(path) or io.is_dir(path):
        raise UserInputError(f"{given}: {path} is not a model file"
                             + (f" ({ngc})" if path.endswith(".tlt") else ""))
    if crypto.looks_like_tao(io.read_bytes(path)):
        raise UserInputError(f"{given}: a model encrypted by NVIDIA TAO; {ngc}")
    loaded = load_model_file(path, key, keras_objects())
    if loaded.metadata and loaded.family != spec.model.base_model:
        raise UserInputError(
            f"model.weights_init = {json.dumps(spec.model.weights_init)}: is a "
            f"{loaded.family} model, the spec's model.base_model is {spec.model.base_model}")
    start = loaded.model
    classes_out = start.output_shape[-1]
    if classes_out != num_classes and not spec.model.add_new_head:
        raise UserInputError(
            f"model.weights_init = {json.dumps(spec.model.weights_init)}: has {classes_out} "
            f"classes, the spec {num_classes}; set model.add_new_head to replace the classifier")
    for layer in model.layers:
        if spec.model.add_new_head and layer.name.endswith("predictions_dense"):
            continue  # the new head (and hand_landmarks' canned vote's) keeps fresh weights
        try:
            source = start.get_layer(layer.name)
        except ValueError:
            continue
        if [w.shape for w in source.weights] != [w.shape for w in layer.weights]:
            raise UserInputError(f"model.weights_init = {json.dumps(spec.model.weights_init)}: "
                                 f"layer {layer.name} does not match this architecture")
        layer.set_weights(source.get_weights())
    return model


class _Checkpointer:
    """Writes last.ckpt then state.json after every epoch; both atomically. The checkpoint is
    the Keras model encrypted with the run's key (the key protects the model, checkpoints
    included), and decrypting it on resume proves the key is the one the run started with."""

    LEGACY = "last.keras"  # plain checkpoints of earlier versions: removed, never read

    def __init__(self, folder: str, enabled: bool, key: str):
        self.folder = folder
        self.enabled = enabled
        self.key = key

    @property
    def model_path(self) -> str:
        return io.join(self.folder, "last.ckpt")

    @property
    def state_path(self) -> str:
        return io.join(self.folder, "state.json")

    def read_state(self) -> dict | None:
        if not (io.exists(self.state_path) and io.exists(self.model_path)):
            return None
        return json.loads(io.read_text(self.state_path))

    def save(self, model, state: dict) -> None:
        if not self.enabled:
            return
        from gesturenet_lib.models.model_file import keras_bytes

        io.write_bytes(self.model_path, crypto.encrypt(keras_bytes(model), self.key, "keras"))
        io.write_text(self.state_path, json.dumps(state, indent=1))
        legacy = io.join(self.folder, self.LEGACY)
        if io.exists(legacy):
            io.delete(legacy)

    def load_model(self):
        """The checkpointed model, compiled; a different key (or a changed file) is exit 2."""
        from gesturenet_lib.families import keras_objects
        from gesturenet_lib.models.model_file import load_keras_bytes

        try:
            data, _ = crypto.decrypt(io.read_bytes(self.model_path), self.key)
        except crypto.DecryptionError:
            raise UserInputError(
                f"{self.model_path}: this run's checkpoint does not open with this key (it was "
                "written with another key, or changed); resume with the key the run started "
                f"with, or delete {self.folder} to start over") from None
        return load_keras_bytes(data, compile=True, custom_objects=keras_objects())


def _write_csv(path: str, history: list[dict]) -> None:
    buffer = _text_io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k) for k in CSV_FIELDS})
    io.write_text(path, buffer.getvalue())


def _epoch_handler(stage_name: str, stage_index: int, model, history: list,
                   checkpointer: _Checkpointer, csv_path: str, is_chief: bool, summary_writer):
    """After every epoch: record, checkpoint (model, optimizer, state), CSV, TensorBoard, log."""

    def on_epoch_end(result) -> None:
        import tensorflow as tf

        row = {"stage": stage_name, "epoch": result.epoch, "loss": result.loss,
               "accuracy": result.accuracy, "val_loss": result.val_loss,
               "val_accuracy": result.val_accuracy, "learning_rate": result.learning_rate,
               "images_per_s": round(result.images_per_s, 1)}
        row = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in row.items()}
        history.append(row)
        checkpointer.save(model, {"stage_index": stage_index, "stage": stage_name,
                                  "epochs_done": result.epoch, "history": history})
        if is_chief:
            _write_csv(csv_path, history)
            with summary_writer.as_default(step=len(history)):
                for name in ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                             "images_per_s"):
                    if row[name] is not None:
                        tf.summary.scalar(name, row[name])
            summary_writer.flush()
        val = ("" if result.val_loss is None else
               f" val_loss {result.val_loss:.4f} val_acc {result.val_accuracy:.4f}")
        log.info("train: %s epoch %d: loss %.4f acc %.4f%s lr %.3g %.1f img/s", stage_name,
                 result.epoch, result.loss, result.accuracy, val, result.learning_rate,
                 result.images_per_s)

    return on_epoch_end


def train(exp: Experiment, key: str, tensorboard_dir: str | None = None) -> TrainResult:
    """Run (or resume) training as ``exp`` describes; TensorBoard's event files go to
    ``tensorboard_dir`` (default: tensorboard/ in the output folder). One run at a time per
    output folder: a second run into it is refused while the first holds the folder's lock."""
    from gesturenet_lib.training import distribution

    spec = exp.spec
    if not key:
        raise UserInputError("-k/--key: an empty key cannot encrypt the model")
    if not plan_stages(spec):
        raise UserInputError(f"{exp.source}: trainer: every stage has train_epochs = 0")
    cluster = distribution.cluster_from_env(spec.trainer.num_workers)
    out_dir = exp.model_dir
    what = f"{exp.source}: output_experiments_fld/save_weights_path"
    io.check_output(out_dir, what, folder=True)
    work_dir = out_dir if cluster.is_chief else io.join(out_dir, f".worker{cluster.index}")
    with local_files.folder_lock(work_dir, what):
        return _train_locked(exp, key, cluster, out_dir, work_dir, tensorboard_dir)


@dataclass(frozen=True)
class _Inputs:
    train: object                   # tf.data batches
    validation: object | None
    steps: int                      # per epoch
    val_steps: int
    examples: int
    class_weights: list[float] | None
    attachments: dict[str, bytes]


def _training_inputs(exp: Experiment, fam, prep, cluster) -> _Inputs:
    """The sets of data.json as the family trains on them, sharded across workers."""
    import tensorflow as tf

    from gesturenet_lib.data.dataset_file import read_dataset_file
    from gesturenet_lib.data.splits import TRAIN, VALIDATION
    from gesturenet_lib.training.data import read_class_weights, read_sets

    spec, classes = exp.spec, exp.spec.dataset.classes
    data = read_dataset_file(exp.data_json, "data file (dataset.data_path)")
    sets = read_sets(data, exp.image_root, classes, (TRAIN, VALIDATION))
    train_set, val_set = sets[TRAIN], sets[VALIDATION]
    if len(train_set) == 0:
        raise UserInputError(f"{exp.data_json}: train_set has no images")
    made = fam.training_inputs(spec, train_set, val_set, prep, repeat_val=cluster.workers > 1)
    train_ds, val_ds = made.train, made.validation
    if cluster.workers > 1:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(options)
        val_ds = val_ds.with_options(options) if val_ds is not None else None
    return _Inputs(train_ds, val_ds, -(-made.train_examples // spec.batch_size),
                   -(-len(val_set) // spec.batch_size), made.train_examples,
                   read_class_weights(data, classes), made.attachments)


def _train_locked(exp: Experiment, key: str, cluster, out_dir: str,
                  work_dir: str, tensorboard_dir: str | None) -> TrainResult:
    import keras
    import tensorflow as tf

    from gesturenet_lib.families import family
    from gesturenet_lib.models.model_file import save_tlt

    spec = exp.spec
    stages = plan_stages(spec)
    fam = family(spec.model.base_model)
    prep = fam.preprocessing(spec.model)
    keras.utils.set_random_seed(spec.random_seed)
    strategy = cluster.strategy()  # before any TensorFlow op: collective ops need it first
    inputs = _training_inputs(exp, fam, prep, cluster)

    io.makedirs(work_dir)
    checkpointer = _Checkpointer(io.join(work_dir, "checkpoints"),
                                 any(s.stage.enable_checkpointing for s in stages), key)
    state = checkpointer.read_state()
    history: list[dict] = list(state["history"]) if state else []
    if cluster.is_chief:
        io.write_text(io.join(out_dir, "train_spec.json"), dumps(spec))
        io.write_text(io.join(out_dir, "classes.json"),
                      json.dumps(spec.dataset.classes, indent=1) + "\n")
    with strategy.scope():
        if state:
            log.info("train: resuming %s after epoch %d from %s", state["stage"],
                     state["epochs_done"], checkpointer.model_path)
            model = checkpointer.load_model()
        else:
            model = _initial_model(exp, key)
    handler = functools.partial(_epoch_handler, model=model, history=history,
                                checkpointer=checkpointer,
                                csv_path=io.join(out_dir, "metrics.csv"),
                                is_chief=cluster.is_chief,
                                summary_writer=tf.summary.create_file_writer(
                                    tensorboard_dir if tensorboard_dir and cluster.is_chief
                                    else io.join(work_dir, "tensorboard")))
    _run_stages(model, stages, state, strategy, inputs, spec.batch_size, handler)
    model_file = model_path(out_dir)
    if cluster.is_chief:
        save_tlt(model_file, model, key, spec.dataset.classes, prep,
                 {**fam.metadata(spec), "base_model": fam.name, "history": history},
                 inputs.attachments)
        log.info("train: wrote %s", model_file)
    classes = spec.dataset.classes
    return TrainResult(out_dir, model_file, history, sorted(classes, key=classes.get),
                       list(prep.input_dims()))


def _run_stages(model, stages, state, strategy, inputs: _Inputs, batch_size: int,
                handler) -> None:
    """Each stage from where a resumed run stopped: unfreeze, compile, fit its epochs."""
    from gesturenet_lib.training.loop import run_stage

    first = state["stage_index"] if state else 0
    for index in range(first, len(stages)):
        plan = stages[index]
        done = state["epochs_done"] if (state and index == state["stage_index"]) else 0
        if done >= plan.stage.train_epochs:
            continue
        resumed_mid_stage = bool(state) and index == state["stage_index"] and done > 0
        if not resumed_mid_stage:
            with strategy.scope():
                set_trainable(model, plan.stage.num_layers_unfreeze)
                model.compile(optimizer=make_optimizer(plan.stage,
                                                       inputs.steps * plan.stage.train_epochs),
                              loss=make_loss(plan.stage), metrics=["accuracy"])
        log.info("train: stage %s: epochs %d-%d of %d, %d images, %d trainable tensors",
                 plan.name, done + 1, plan.stage.train_epochs, plan.stage.train_epochs,
                 inputs.examples, len(model.trainable_weights))
        run_stage(model, strategy, inputs.train, inputs.validation, inputs.steps,
                  inputs.val_steps, batch_size, plan.stage.loss_fn, done,
                  plan.stage.train_epochs, handler(plan.name, index), inputs.class_weights)
        state = None
