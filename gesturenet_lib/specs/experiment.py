"""The experiment spec (`train_spec.json`) shared by train, evaluate, inference and export.

Field names and defaults follow TAO GestureNet's published spec table and sample; `trainer.class`
and `trainer.module` (TAO internals) are accepted and ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from gesturenet_lib.specs.base import SpecError, fail, join_path, spec_field

RESNET_DEPTHS = (6, 10, 12, 18, 26, 34, 50, 101, 152)


@dataclass(frozen=True)
class TrainingStage:
    stage_order: int = spec_field(1, min=1, help="stages run in increasing stage_order")
    train_epochs: int = spec_field(5, min=0, help="epochs of this stage; 0 skips it")
    loss_fn: Literal["categorical_crossentropy", "categorical_focal_crossentropy"] = spec_field(
        "categorical_crossentropy", help="training loss")
    optimizer: Literal["sgd", "adam", "rmsprop"] = spec_field("rmsprop", help="optimizer")
    initial_lrate: float = spec_field(
        1e-3, min=0.0, max=10.0, min_exclusive=True, help="learning rate at the start of the stage")
    decay_step_size: float = spec_field(
        33.0, min=0.0, max=100.0, min_exclusive=True,
        help="percent of the stage's iterations between learning-rate drops")
    lr_drop_rate: float = spec_field(
        0.5, min=0.0, max=1.0, min_exclusive=True, help="factor applied at each drop")
    enable_checkpointing: bool = spec_field(True, help="write a resumable checkpoint every epoch")
    num_layers_unfreeze: int = spec_field(
        3, min=0, help="the last N layers train, the rest are frozen")


def _finetuning_default() -> TrainingStage:
    return TrainingStage(stage_order=2, train_epochs=20, optimizer="sgd", initial_lrate=5e-5,
                         num_layers_unfreeze=2)


@dataclass(frozen=True)
class Trainer:
    trainer_class: str | None = spec_field(None, key="class", help="TAO internal; ignored")
    module: str | None = spec_field(None, help="TAO internal; ignored")
    top_training: TrainingStage = spec_field(default_factory=TrainingStage)
    finetuning: TrainingStage = spec_field(default_factory=_finetuning_default)
    num_workers: int = spec_field(1, min=1, max=1024, help="data-parallel training workers")

    def check(self, at: str) -> None:
        if self.top_training.stage_order == self.finetuning.stage_order:
            fail(join_path(join_path(at, "finetuning"), "stage_order"),
                 self.finetuning.stage_order,
                 f"must differ from top_training.stage_order ({self.top_training.stage_order})")


LANDMARK_INPUT_SIZE = 224  # the hand-landmark network's square input (see models.landmark_assets)
# Model keys that describe a ResNet and mean nothing to the hand_landmarks family.
RESNET_ONLY_KEYS = ("image_height", "image_width", "gray_scale_input", "num_layers",
                    "use_batch_norm")

# How the hand is found in a crop (the crop graph's localization; also the rows training reads)
Localization = Literal["landmarks_first", "palm_detector", "upright_first", "views", "none"]


@dataclass(frozen=True)
class HandLandmarks:
    """The hand_landmarks family: crop -> frozen landmark network -> features -> MLP head."""
    padding: float = spec_field(
        0.0, min=0.0, max=2.0,
        help="border added on each side of the crop, as a fraction of its side, before the "
             "landmark network (part of the model and of the exported graph)")
    padding_mode: Literal["edge", "constant"] = spec_field(
        "edge", help="fill of that border: repeat the edge pixels, or black")
    localization: Localization = spec_field(
        "landmarks_first",
        help="how the hand is found in the crop: MediaPipe's lite landmark network places the "
             "hand and the full one reads it in the box those landmarks give, the palm "
             "detector's path only for the batches where a crop's hand is not found that "
             "way; \"palm_detector\": MediaPipe's palm detector and its rotated hand box "
             "(falling back to the views where it finds no palm); "
             "\"upright_first\": the crop as it is when the landmark network is sure of an "
             "upright hand filling it, the palm detector's path only for the batches where a "
             "crop is not; the views alone; or the crop as it is")
    second_look_border: float = spec_field(
        0.15, min=0.0, max=1.0,
        help="where the landmark network is not sure of the hand it found "
             "(second_look_below, second_look_below_at_edge), the crop is looked at again "
             "on a border of this fraction of its side on each side and the surer of "
             "the two kept: a hand that fills its crop (a tight box) is found more surely "
             "with room around it (part of the model and of the exported graph; 0: off)")
    second_look_border_mode: Literal["edge", "constant"] = spec_field(
        "edge", help="fill of the second look's border: repeat the crop's edge pixels (a "
                     "finger cut by a tight box goes on into the border instead of ending "
                     "at a black line), or black")
    second_look_below: float = spec_field(
        0.9, min=0.0, max=1.0, min_exclusive=True,
        help="the hand-presence score under which a crop gets the second look (higher: "
             "more crops looked at twice, each such crop costing a second pass)")
    second_look_edge: float = spec_field(
        0.15, min=0.0, max=0.5,
        help="a hand 'fills its crop' when the first look put a landmark within this "
             "fraction of the side from the crop's edge; such a hand gets the second look "
             "under second_look_below_at_edge instead (0: only a hand reaching out of the "
             "crop)")
    second_look_below_at_edge: float = spec_field(
        0.99, min=0.0, max=1.0, min_exclusive=True,
        help="the hand-presence score under which a hand that fills its crop (see "
             "second_look_edge) gets the second look: tight boxes, where it helps most, are "
             "looked at again more often than loose ones, where more room gains little")
    try_rotations: bool = spec_field(
        True, help="views: also run the network on the crop turned 90 degrees each way and "
                   "keep the view where it is surest of a hand (the network expects an upright "
                   "hand; 3x the cost)")
    presence_threshold: float = spec_field(
        0.5, min=0.0, max=1.0, min_exclusive=True,
        help="a crop whose hand-presence score is below this counts as 'no hand found'")
    features: Literal["embedding+landmarks+canned", "embedding+landmarks", "embedding",
                      "landmarks"] = spec_field(
        "embedding+landmarks+canned",
        help="what the head reads, side by side: \"embedding\", MediaPipe's pretrained 128-d "
             "hand embedding (its gesture embedder on the landmarks, world landmarks and "
             "handedness); \"landmarks\", features of the raw landmarks (wrist-relative, one "
             "handedness mirrored, fingertip distances); \"canned\", the 8 scores of "
             "Google's pretrained canned gesture classifier on that embedding")
    canned_vote: bool = spec_field(
        True, help="a second head, of the same widths, that reads Google's 8 canned gesture "
                   "scores alone and votes with the main head: their probabilities are "
                   "averaged. Each training example trains one of the two, picked at random, "
                   "so the second learns on its own what Google's classifier (trained on far "
                   "more people) says of each class, and a few examples a class cannot talk "
                   "the model out of it")
    hidden_units: list[int] = spec_field(
        default_factory=lambda: [128, 64], min=1, max=65536,
        help="widths of the head's hidden layers (empty: logistic regression)")
    dropout: float = spec_field(0.2, min=0.0, max=0.9, help="dropout after each hidden layer")
    augment_rotation: float = spec_field(
        0.0, min=0.0, max=90.0,
        help="training: each hand's landmarks turned in the image plane about the wrist by a "
             "random angle of up to this many degrees either way (0: off); it changes the "
             "landmark features only, not the embedding or the canned scores")
    augment_jitter: float = spec_field(
        0.0, min=0.0, max=0.2,
        help="training: each landmark moved by Gaussian noise of this fraction of the "
             "wrist-to-middle-knuckle length (0: off); landmark features only, like "
             "augment_rotation")
    augment_cuts: int = spec_field(
        0, min=0, max=8,
        help="training: this many more cuts of each training crop, each run through the "
             "frozen networks: a window inside the crop (each side 0.75-1.0 of the crop's, "
             "down to the hand's own box) or the crop on a wider black border (each side "
             "1.0-2.3x, up to 3x the box), any aspect; the hand as other tools cut it (0: "
             "off)")
    augment_localizations: list[Localization] = spec_field(
        default_factory=lambda: ["palm_detector"],
        help="training: each training crop also run through these localizations (besides "
             "`localization`), each row one more training example, so the head learns the "
             "landmarks as each way of finding the hand gives them (whole images and video "
             "are read through the palm detector's rotated boxes; empty: the spec's "
             "localization alone)")


@dataclass(frozen=True)
class Model:
    image_height: int = spec_field(160, min=16, max=2048, help="network input height in pixels")
    image_width: int = spec_field(160, min=16, max=2048, help="network input width in pixels")
    gray_scale_input: bool = spec_field(False, help="one input channel instead of RGB")
    data_format: Literal["channels_first", "channels_last"] = spec_field(
        "channels_first", help="layout at the model's input and in every exported artefact")
    input_fit: Literal["stretch", "letterbox"] | None = spec_field(
        None, help="how a crop of another shape than the input is fitted: \"stretch\" "
                   "resizes it to the input (TAO's classifiers), \"letterbox\" scales it to "
                   "fit, aspect kept, centred on a black border (DeepStream's "
                   "maintain-aspect-ratio with symmetric-padding); stored with the model. "
                   "Default: letterbox for hand_landmarks, stretch for resnet_vanilla")
    base_model: Literal["resnet_vanilla", "hand_landmarks"] = spec_field(
        "resnet_vanilla", help="network family: a ResNet on the crop, or the pretrained "
                               "hand-landmark network plus a trained head")
    num_layers: Literal[6, 10, 12, 18, 26, 34, 50, 101, 152] = spec_field(
        18, help="ResNet depth")
    weights_init: str | None = spec_field(
        None, help="a .tlt (with the key) or Keras file to start from")
    add_new_head: bool = spec_field(
        False, help="replace the classifier of weights_init (when the class count differs)")
    kernel_regularizer_type: Literal["l1", "l2"] = spec_field("l2", help="weight regulariser")
    kernel_regularization_factor: float = spec_field(
        0.001, min=0.0, max=1.0, aliases=("Kernel_regularizer_factor",),
        help="weight-regulariser strength")
    use_batch_norm: bool = spec_field(True, help="batch normalisation after each convolution")
    hand_landmarks: HandLandmarks | None = spec_field(
        None, help="settings of the hand_landmarks family (defaults apply when left out)")

    def check_given(self, at: str, given: set[str]) -> None:
        """Keys that do not apply to the chosen family are refused rather than ignored."""
        if self.base_model == "hand_landmarks":
            for key in RESNET_ONLY_KEYS:
                if key in given:
                    fail(join_path(at, key), getattr(self, key),
                         "does not apply to base_model \"hand_landmarks\" (its input is the "
                         f"landmark network's {LANDMARK_INPUT_SIZE}x{LANDMARK_INPUT_SIZE} RGB); "
                         "remove it")
        elif "hand_landmarks" in given:
            raise SpecError(join_path(at, "hand_landmarks"), None,
                            f"applies only to base_model \"hand_landmarks\", not "
                            f"\"{self.base_model}\"", show_value=False)

    def keys_not_written(self) -> tuple[str, ...]:
        """What ``dump`` leaves out: the ResNet-only keys of a hand_landmarks model."""
        return RESNET_ONLY_KEYS if self.base_model == "hand_landmarks" else ()

    @property
    def landmarks(self) -> HandLandmarks:
        return self.hand_landmarks or HandLandmarks()


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class ProbabilityAug:
    """An augmentation applied with a probability; ``true``/``false`` alone sets ``enable``."""
    enable: bool = spec_field(False, help="apply this augmentation")
    probability: float = spec_field(0.5, min=0.0, max=1.0, help="chance per image")

    @classmethod
    def shorthand(cls, value: object, at: str) -> dict | None:
        return {"enable": value} if isinstance(value, bool) else None


def _ordered(at: str, block: object, low: str, high: str) -> None:
    if getattr(block, low) > getattr(block, high):
        fail(join_path(at, low), getattr(block, low), f"must be <= {high} ({getattr(block, high)})")


# TAO's tutorial spec writes shear_range, rotation_range and brightness_range in the forms of
# Keras's ImageDataGenerator (whose argument names they are): a number is the limit of a random
# draw made for every image (0 disables it), a list is [min, max]. Each becomes the object form
# below with probability 1.
MAX_SHEAR_DEGREES = 45.0


@dataclass(frozen=True)
class ShearAug(ProbabilityAug):
    max_shear_x: float = spec_field(0.1, min=0.0, max=1.0, help="largest horizontal shear ratio")
    max_shear_y: float = spec_field(0.1, min=0.0, max=1.0, help="largest vertical shear ratio")

    @classmethod
    def shorthand(cls, value: object, at: str) -> dict | None:
        """TAO/Keras: ``"shear_range": 10`` is a horizontal shear angle in degrees, drawn in
        [-10, 10] for every image; the shear ratio of an angle is its tangent."""
        if not _is_number(value):
            return super().shorthand(value, at)
        if not 0.0 <= value < MAX_SHEAR_DEGREES:
            fail(at, value, f"a shear angle in degrees must be in [0, {MAX_SHEAR_DEGREES:g})")
        return {"enable": value > 0, "probability": 1.0,
                "max_shear_x": math.tan(math.radians(value)), "max_shear_y": 0.0}


@dataclass(frozen=True)
class ColorPcaAug(ProbabilityAug):
    alpha_std: float = spec_field(
        0.1, min=0.0, max=1.0, help="std-dev of the PCA lighting noise (AlexNet-style)")


@dataclass(frozen=True)
class GammaAug(ProbabilityAug):
    min_gamma: float = spec_field(0.8, min=0.0, max=10.0, min_exclusive=True,
                                  aliases=("lower_limit",), help="lowest gamma")
    max_gamma: float = spec_field(1.2, min=0.0, max=10.0, min_exclusive=True,
                                  aliases=("upper_limit",), help="highest gamma")

    def check(self, at: str) -> None:
        _ordered(at, self, "min_gamma", "max_gamma")


@dataclass(frozen=True)
class RotationAug(ProbabilityAug):
    max_angle: float = spec_field(15.0, min=0.0, max=180.0, help="largest rotation in degrees")

    @classmethod
    def shorthand(cls, value: object, at: str) -> dict | None:
        """TAO/Keras: ``"rotation_range": 5`` rotates every image by an angle in [-5, 5]."""
        if not _is_number(value):
            return super().shorthand(value, at)
        if not 0.0 <= value <= 180.0:
            fail(at, value, "a rotation limit in degrees must be in [0, 180]")
        return {"enable": value > 0, "probability": 1.0, "max_angle": value}


@dataclass(frozen=True)
class BrightnessAug(ProbabilityAug):
    min_factor: float = spec_field(0.7, min=0.0, max=10.0, help="darkest brightness factor")
    max_factor: float = spec_field(1.3, min=0.0, max=10.0, help="brightest brightness factor")

    def check(self, at: str) -> None:
        _ordered(at, self, "min_factor", "max_factor")

    @classmethod
    def shorthand(cls, value: object, at: str) -> dict | None:
        """TAO/Keras: ``"brightness_range": [0.5, 1.5]`` scales every image by a factor in it."""
        if not isinstance(value, list):
            return super().shorthand(value, at)
        if len(value) != 2 or not all(_is_number(v) for v in value):
            fail(at, value, "must be [min, max]: two brightness factors")
        return {"enable": True, "probability": 1.0, "min_factor": value[0],
                "max_factor": value[1]}


@dataclass(frozen=True)
class OcclusionAug(ProbabilityAug):
    """Random erasing (Zhong et al.): TAO's keys, plus ``fill_value`` for a constant fill."""
    min_area: float = spec_field(0.02, min=0.0, max=1.0, help="smallest occluded share of the crop")
    max_area: float = spec_field(0.2, min=0.0, max=1.0, help="largest occluded share of the crop")
    min_aspect_ratio: float = spec_field(
        0.3, min=0.0, max=100.0, min_exclusive=True, help="smallest width/height of the patch")
    max_aspect_ratio: float = spec_field(
        3.3, min=0.0, max=100.0, min_exclusive=True, help="largest width/height of the patch")
    pixel_level: bool = spec_field(
        True, help="a random value per pixel; false: one random value for the whole patch")
    min_pixel: int = spec_field(0, min=0, max=255, help="lowest value of the random fill")
    max_pixel: int = spec_field(255, min=0, max=255, help="highest value of the random fill")
    fill_value: int | None = spec_field(
        None, min=0, max=255,
        help="with pixel_level false: fill with this constant instead of a random value")

    def check(self, at: str) -> None:
        _ordered(at, self, "min_area", "max_area")
        _ordered(at, self, "min_aspect_ratio", "max_aspect_ratio")
        _ordered(at, self, "min_pixel", "max_pixel")

    @property
    def fill_range(self) -> tuple[int, int]:
        """The [low, high] of the fill: a constant is a range of one value."""
        if self.fill_value is not None and not self.pixel_level:
            return self.fill_value, self.fill_value
        return self.min_pixel, self.max_pixel


@dataclass(frozen=True)
class Augmentation:
    shear_range: ShearAug = spec_field(
        default_factory=ShearAug,
        help="an object, true/false, or TAO's number: a shear angle limit in degrees")
    color_pca_aug: ColorPcaAug = spec_field(default_factory=ColorPcaAug)
    gamma_aug: GammaAug = spec_field(default_factory=GammaAug)
    rotation_range: RotationAug = spec_field(
        default_factory=RotationAug,
        help="an object, true/false, or TAO's number: the rotation limit in degrees")
    brightness_range: BrightnessAug = spec_field(
        default_factory=BrightnessAug,
        help="an object, true/false, or TAO's list: [min factor, max factor]")
    occlusion_aug: OcclusionAug = spec_field(default_factory=OcclusionAug)
    horizontal_flip: ProbabilityAug = spec_field(
        default_factory=ProbabilityAug,
        help="an object, or TAO's true/false (probability 0.5)")


@dataclass(frozen=True)
class Dataset:
    classes: dict[str, int] = spec_field(help="class name -> index, indices 0..n-1")
    num_classes: int = spec_field(min=2, help="must equal the number of classes")
    data_path: str = spec_field(help="the data.json written by dataset_convert")
    image_root_path: str = spec_field(
        "", help="root the crop paths in data.json are relative to (its mount_dir_path)")
    augmentation: Augmentation = spec_field(default_factory=Augmentation)

    def check(self, at: str) -> None:
        if self.num_classes != len(self.classes):
            fail(join_path(at, "num_classes"), self.num_classes,
                 f"must equal the number of classes ({len(self.classes)})")
        indices = sorted(self.classes.values())
        if indices != list(range(len(self.classes))):
            fail(join_path(at, "classes"), self.classes,
                 f"indices must be 0..{len(self.classes) - 1}, each used once")


@dataclass(frozen=True)
class Evaluator:
    evaluation_exp_name: str = spec_field(
        "results", help="folder under output_experiments_fld for evaluation outputs")
    data_path: str | None = spec_field(
        None, help="data.json to evaluate on (default: dataset.data_path)")


@dataclass(frozen=True)
class ExperimentSpec:
    output_experiments_fld: str = spec_field(help="root folder of this experiment's outputs")
    dataset: Dataset = spec_field(help="training data and augmentation")
    random_seed: int = spec_field(42, min=0, help="seed for repeatable runs")
    batch_size: int = spec_field(64, min=1, max=65536, help="images per training step")
    save_weights_path: str = spec_field(
        "model", help="folder under output_experiments_fld for the trained model")
    trainer: Trainer = spec_field(default_factory=Trainer)
    model: Model = spec_field(default_factory=Model)
    evaluator: Evaluator = spec_field(default_factory=Evaluator)
