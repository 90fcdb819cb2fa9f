"""export: model -> .onnx/.etlt, labels.txt, DeepStream config, Triton entry, INT8 files."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def export(model: Input[Model], dataset: Input[Dataset], data_type: str, output_name: str,
           exported: Output[Model]):
    from gesturenet_lib.keys import resolve_key
    from gesturenet_lib.tasks.export import on_artifacts, run

    result = run(on_artifacts(model.path, dataset.path, resolve_key(None, "GESTURENET_KEY"),
                              exported.path, data_type, output_name))
    exported.metadata.update({"data_type": data_type, "files": result.relative_to(exported.path),
                              "classes": model.metadata.get("classes"),
                              "input_dims": model.metadata.get("input_dims")})
