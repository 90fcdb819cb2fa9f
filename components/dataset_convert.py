"""dataset_convert: raw data -> crops, data.json, fold files, rejects (Beam inside)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def dataset_convert(raw_data: Input[Dataset], dataset_spec: dict, experiment_spec: dict,
                    k_folds: int, experiment_name: str, dataset: Output[Dataset],
                    counts: Output[Metrics]):
    from gesturenet_lib.pipeline_steps import convert_step

    stats = convert_step(raw_data.path, dataset_spec, experiment_spec, k_folds,
                         experiment_name, dataset.path)
    for name in ("boxes_read", "crops", "rejected", "filtered", "sampled_out",
                 "train_set_images", "validation_set_images", "kpi_set_images"):
        counts.log_metric(name, stats[name])
    dataset.metadata.update({"classes": stats["classes"], "crops": stats["crops"],
                             "k_folds": k_folds, "experiment_name": experiment_name})
    print(stats["summary"])
