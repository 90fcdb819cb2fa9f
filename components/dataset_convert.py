"""dataset_convert: raw data -> crops, data.json, fold files, rejects (Beam inside)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def dataset_convert(raw_data: Input[Dataset], dataset_spec: dict, experiment_spec: dict,
                    k_folds: int, experiment_name: str, dataset: Output[Dataset],
                    counts: Output[Metrics]):
    from gesturenet_lib.tasks.dataset_convert import into_dataset_folder, run

    result = run(into_dataset_folder(raw_data.path, dataset_spec, experiment_spec, k_folds,
                                     experiment_name, dataset.path))
    for name, value in result.counts.items():
        counts.log_metric(name, value)
    dataset.metadata.update({"classes": result.classes, "crops": result.stats["crops"],
                             "k_folds": k_folds, "experiment_name": experiment_name})
    print(result.summary)
