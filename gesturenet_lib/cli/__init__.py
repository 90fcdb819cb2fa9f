"""`gesturenet <subtask>`: TAO GestureNet's command line (``app``), one module per subtask."""

from gesturenet_lib.cli.app import SUBTASKS, build_parser, main, map_flag_paths

__all__ = ["SUBTASKS", "build_parser", "main", "map_flag_paths"]
