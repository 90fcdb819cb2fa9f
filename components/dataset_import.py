"""dataset_import: a source folder (HaGRID, or TAO's layout already) -> raw data in TAO's layout."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def dataset_import(source: Input[Dataset], source_format: str, dataset_name: str,
                   raw_data: Output[Dataset]):
    from gesturenet_lib.tasks.dataset_import import ImportRequest, run

    result = run(ImportRequest.into_mount(source.path, source_format, raw_data.path,
                                          dataset_name))
    raw_data.metadata.update({"format": "tao", "dataset": dataset_name, "images": result.images,
                              "boxes": result.boxes, "users": result.users,
                              "rejected": result.rejected})
