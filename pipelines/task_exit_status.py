"""An adapter around KFP's Docker task handler, so that a task that fails is reported FAILED.

The defect (kfp 2.17.3, ``kfp/local/docker_task_handler.py``, ``run_docker_container``): the
container is started with ``auto_remove=True``; after streaming its logs the handler asks
for the exit status, and when the engine has already removed the container (``NotFound``) it
returns 0. Against podman's Docker API that is the usual case: a component that raised and a
container that exited 3 were both reported SUCCESS, and the pipeline went on with missing
outputs. ``auto_remove`` cannot be turned off through DockerRunner's arguments (the handler
passes it itself), and KFP has no public hook for another handler.

So, while ``exit_status_checked()`` is active (and only then), the Docker handler KFP's
dispatcher picks is this subclass: it starts the container without auto-removal, waits for
its real exit status, then removes it. Everything else (volumes, environment, the runner's
container arguments, image lookup) is KFP's own. Remove this module when KFP reads the status
before removing the container.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from kfp.local import docker_task_handler, status


class ExitCheckedDockerTaskHandler(docker_task_handler.DockerTaskHandler):
    """KFP's handler, with the container kept until its exit status is read."""

    def run(self) -> status.Status:
        import docker

        client = docker.from_env()
        try:
            args = dict(self.runner.container_run_args)
            if self.env_vars:
                args["environment"] = self.env_vars
            code = run_container(client, self.image, self.full_command,
                                 self.get_volumes_to_mount(client), **args)
        finally:
            client.close()
        return status.Status.SUCCESS if code == 0 else status.Status.FAILURE


def run_container(client, image: str, command: list[str], volumes: dict, **run_args) -> int:
    """Start, stream the logs, wait for the exit status, remove; the status."""
    image = docker_task_handler.add_latest_tag_if_not_present(image)
    container = client.containers.run(image=image, command=command, detach=True, stdout=True,
                                      stderr=True, volumes=volumes, **run_args)
    try:
        for line in container.logs(stream=True, follow=True):
            print(line.decode(errors="replace"), end="")
        return int(container.wait()["StatusCode"])
    finally:
        container.remove(force=True)


@contextmanager
def exit_status_checked() -> Iterator[None]:
    """Within the block, DockerRunner tasks run through ExitCheckedDockerTaskHandler."""
    stock = docker_task_handler.DockerTaskHandler
    docker_task_handler.DockerTaskHandler = ExitCheckedDockerTaskHandler
    try:
        yield
    finally:
        docker_task_handler.DockerTaskHandler = stock
