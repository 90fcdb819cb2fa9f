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
    from gesturenet_lib.pipeline_steps import full_frame_evaluate_step

    result = full_frame_evaluate_step(raw_data.path, dataset.path, model.path, train_spec,
                                      dataset_spec, optional_key(None), report.path, data_type)
    hands = result["full_frame"]
    metrics.log_metric("hand_recall", hands["hand_recall"])
    metrics.log_metric("hand_precision", hands["hand_precision"])
    metrics.log_metric("accuracy", result["accuracy"])
    metrics.log_metric("macro_f1", result["macro_avg"]["f1"])
    print(result["table"])
    return {"full_frame": hands, "accuracy": result["accuracy"],
            "macro_avg": result["macro_avg"], "table": result["table"]}
