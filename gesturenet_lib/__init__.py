"""GestureNet toolkit library: TAO GestureNet's subtasks as plain Python functions.

Never imports kfp; heavy libraries (TensorFlow, Beam) are imported where they are used, so the
CLI starts fast.
"""

__version__ = "0.1.0"
