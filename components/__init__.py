"""KFP v2 components, one module per subtask. Each is an interface: typed inputs and outputs
translated into a task's Request (``gesturenet_lib.tasks``), its ``run``, and the Result
logged; no logic lives here.

In a cluster every component runs in the project's image (``GESTURENET_IMAGE``, default
``<registry>/gesturenet:<package version>``); locally KFP's SubprocessRunner runs them in the
current environment.
"""

from gesturenet_lib.container_image import project_image

IMAGE = project_image()
