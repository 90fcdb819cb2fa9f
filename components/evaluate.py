"""evaluate: model + dataset -> metrics, confusion matrix (shown by the KFP UI), HTML report."""

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def evaluate(dataset: Input[Dataset], model: Input[Model], train_spec: dict, data_type: str,
             fold: int, metrics: Output[Metrics], confusion: Output[ClassificationMetrics],
             report: Output[HTML]) -> dict:
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.pipeline_steps import evaluate_step

    result = evaluate_step(dataset.path, model.path, train_spec, optional_key(None),
                           report.path, data_type, None if fold < 0 else fold)
    metrics.log_metric("accuracy", result["accuracy"])
    metrics.log_metric("macro_f1", result["macro_avg"]["f1"])
    metrics.log_metric("images_evaluated", result["images_evaluated"])
    confusion.log_confusion_matrix(result["confusion_matrix"]["labels"],
                                   result["confusion_matrix"]["matrix"])
    print(result["table"])
    return {"accuracy": result["accuracy"], "macro_avg": result["macro_avg"], "fold": fold,
            "table": result["table"]}
