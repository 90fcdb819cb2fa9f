"""GestureNet toolkit library: TAO GestureNet's subtasks as plain Python.

The public API, for scripts and notebooks: a task's Request, then ``run``::

    import gesturenet_lib as gn

    exp = gn.load_experiment("specs/train_spec.json")
    result = gn.run(gn.TrainRequest(exp, key="my-key"))
    scores = gn.run(gn.EvaluateRequest(exp, result.model_path, "my-key")).metrics

Names are loaded when first used: importing the package never imports kfp, TensorFlow or Beam,
so the CLI starts fast.
"""

from importlib import import_module

__version__ = "0.1.0"

_PUBLIC = {
    "run": "gesturenet_lib.tasks",
    "ImportRequest": "gesturenet_lib.tasks",
    "ConvertRequest": "gesturenet_lib.tasks",
    "TrainRequest": "gesturenet_lib.tasks",
    "EvaluateRequest": "gesturenet_lib.tasks",
    "InferenceRequest": "gesturenet_lib.tasks",
    "ExportRequest": "gesturenet_lib.tasks",
    "load_experiment": "gesturenet_lib.specs",
    "load_convert_specs": "gesturenet_lib.specs",
    "CropRule": "gesturenet_lib.inference.full_frame",
    "UserInputError": "gesturenet_lib.errors",
    "SpecError": "gesturenet_lib.specs",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'gesturenet_lib' has no attribute {name!r}")
