"""evaluate: model + dataset -> metrics, confusion matrix (shown by the KFP UI), HTML report."""

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def evaluate(dataset: Input[Dataset], model: Input[Model], train_spec: dict, data_type: str,
             fold: int, metrics: Output[Metrics], confusion: Output[ClassificationMetrics],
             report: Output[HTML]) -> dict:
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.tasks.evaluate import EvaluateRequest, run

    result = run(EvaluateRequest.on_artifacts(dataset.path, model.path, train_spec,
                                              optional_key(None), report.path, data_type,
                                              None if fold < 0 else fold))
    scores = result.metrics
    metrics.log_metric("accuracy", scores["accuracy"])
    metrics.log_metric("macro_f1", scores["macro_avg"]["f1"])
    metrics.log_metric("images_evaluated", scores["images_evaluated"])
    confusion.log_confusion_matrix(scores["confusion_matrix"]["labels"],
                                   scores["confusion_matrix"]["matrix"])
    print(result.table)
    return {"accuracy": scores["accuracy"], "macro_avg": scores["macro_avg"], "fold": fold,
            "table": result.table}
