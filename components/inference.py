"""inference: model + a set of the dataset -> results.txt and results.jsonl."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def inference(raw_data: Input[Dataset], dataset: Input[Dataset], model: Input[Model],
              train_spec: dict, data_type: str, results: Output[Dataset]):
    from gesturenet_lib.keys import optional_key
    from gesturenet_lib.tasks.inference import InferenceRequest, run

    result = run(InferenceRequest.on_artifacts(raw_data.path, dataset.path, model.path,
                                               train_spec, optional_key(None), results.path,
                                               data_type))
    results.metadata.update({"data_type": data_type, "classified": result.classified,
                             "failed": result.failed})
