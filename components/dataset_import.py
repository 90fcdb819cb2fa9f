"""dataset_import: a source folder (HaGRID, or TAO's layout already) -> raw data in TAO's layout."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def dataset_import(source: Input[Dataset], source_format: str, dataset_name: str,
                   raw_data: Output[Dataset]):
    from gesturenet_lib.pipeline_steps import import_step

    stats = import_step(source.path, source_format, raw_data.path, dataset_name)
    raw_data.metadata.update({"format": "tao", "dataset": dataset_name, **stats})
