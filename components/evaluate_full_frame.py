"""evaluate on full frames: every hand found in the set's raw images against the annotated
boxes (hand recall and precision), gestures on the matched hands; an HTML report."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def evaluate_full_frame(raw_data: Input[Dataset], dataset: Input[Dataset], model: Input[Model],
                        train_spec: dict, dataset_spec: dict, data_type: str,
                        metrics: Output[Metrics], report: Output[HTML]) -> dict:
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.tasks.evaluate import EvaluateRequest, run

    result = run(EvaluateRequest.on_artifacts(dataset.path, model.path, train_spec,
                                              optional_key(None), report.path, data_type,
                                              raw_dir=raw_data.path,
                                              dataset_spec=dataset_spec))
    scores = result.metrics
    hands = scores["full_frame"]
    metrics.log_metric("hand_recall", hands["hand_recall"])
    metrics.log_metric("hand_precision", hands["hand_precision"])
    metrics.log_metric("accuracy", scores["accuracy"])
    metrics.log_metric("macro_f1", scores["macro_avg"]["f1"])
    print(result.table)
    return {"full_frame": hands, "accuracy": scores["accuracy"],
            "macro_avg": scores["macro_avg"], "table": result.table}
