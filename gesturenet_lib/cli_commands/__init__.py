"""One module per CLI subtask; SUBTASKS lists those that exist, in TAO's documentation order."""

from gesturenet_lib.cli_commands import (
    dataset_convert,
    dataset_import,
    evaluate,
    export,
    inference,
    pipeline,
    serve,
    train,
    validate,
)

SUBTASKS = [dataset_import, dataset_convert, train, evaluate, inference, export, serve,
            validate, pipeline]
