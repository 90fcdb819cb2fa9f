"""One door per subtask: each module holds a Request (typed; every location an input or output
path, local or gs://), a Result (every file it wrote, named) and ``run(request) -> Result``.

The CLI (``gesturenet_lib.cli``) and the KFP components (``components/``) only translate into
a Request and print or log the Result. gs:// is staged once, around ``run``
(``local_copies.run_staged``), from the paths the request declares.

    dataset_import   another dataset's layout -> TAO's original layout
    dataset_convert  original layout -> hand crops, person-disjoint splits, data.json (Beam)
    train            data.json -> model.tlt (resumable)
    evaluate         model + a set -> metrics.json, confusion_matrix.png, report.html
    inference        model + crops or whole images -> results.txt, results.jsonl
    export           model -> ONNX / .etlt, INT8 calibration, TensorRT, DeepStream, Triton
"""

from importlib import import_module

# Request class -> the task module that runs it.
TASK_OF = {"ImportRequest": "dataset_import", "ConvertRequest": "dataset_convert",
           "TrainRequest": "train", "EvaluateRequest": "evaluate",
           "InferenceRequest": "inference", "ExportRequest": "export"}

__all__ = ["run", *TASK_OF]


def __getattr__(name: str):
    """The Requests, loaded when first named (a task module imports its layers)."""
    if name in TASK_OF:
        return getattr(import_module(f"{__name__}.{TASK_OF[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run(request):
    """Run the task ``request`` belongs to; its Result."""
    task = TASK_OF.get(type(request).__name__)
    if task is None:
        raise TypeError(f"{type(request).__name__}: not a task's request "
                        f"({', '.join(TASK_OF)})")
    return import_module(f"{__name__}.{task}").run(request)
