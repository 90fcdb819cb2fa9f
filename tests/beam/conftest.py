"""Beam test helpers: an in-process TestPipeline (the portable runner's in-memory mode)."""

from __future__ import annotations

import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline


@pytest.fixture
def pipeline():
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory",
                               "--direct_num_workers=1"])
    return TestPipeline(options=options, blocking=True)
