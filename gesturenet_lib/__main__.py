"""`python -m gesturenet_lib <subtask>`."""

import sys

from gesturenet_lib.cli import main

sys.exit(main())
