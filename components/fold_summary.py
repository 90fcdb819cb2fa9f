"""fold_summary: mean and spread of the k-fold evaluations."""

from typing import List

from kfp import dsl
from kfp.dsl import Metrics, Output

from components import IMAGE


@dsl.component(base_image=IMAGE)
def fold_summary(fold_metrics: List[dict], summary: Output[Metrics]):
    from gesturenet_lib.evaluation.metrics import fold_summary as summarise

    for name, value in summarise(fold_metrics).items():
        summary.log_metric(name, value)
