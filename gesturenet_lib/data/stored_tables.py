"""The large read-only tables the pipeline's steps need (the split plan, each dataset's users),
kept in one JSON file beside the crops instead of inside the steps.

Beam pickles and compresses every step's function several times per run, and a managed runner
ships them in the job graph: steps holding the tables themselves cost 0.3 s per local run at
6,600 users (each ~60 kB compressed, pickled 6 and unpickled 14 times). A step holding a
``StoredPlan`` or ``StoredUsers`` pickles only the file's path and reads the table once, on
first use. The file doubles as a record of which user went to which split.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Mapping
from typing import Any

from gesturenet_lib import io
from gesturenet_lib.data.splits import SplitPlan

FILE_NAME = "split_plan.json"


def write_tables(path: str, plan: SplitPlan, users: dict[str, Mapping[str, dict]]) -> None:
    """Write the plan and each dataset's users (id -> metadata) to ``path``."""
    doc = {
        "plan": {"kpi_users": sorted(plan.kpi_users),
                 "validation_users": sorted(plan.validation_users),
                 "train_users": sorted(plan.train_users),
                 "folds": [sorted(fold) for fold in plan.folds]},
        "users": {dataset: dict(table) for dataset, table in users.items()},
    }
    io.write_text(path, json.dumps(doc, sort_keys=True) + "\n")


class _Stored(abc.ABC):
    """A table read from ``path`` on first use; pickles as the path alone."""

    def __init__(self, path: str):
        self.path = path
        self._table: Any = None

    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    @abc.abstractmethod
    def _from_doc(self, doc: dict) -> Any:
        """This kind of table, from the file's document."""

    def table(self) -> Any:
        if self._table is None:
            self._table = self._from_doc(io.read_json(self.path, "split plan file"))
        return self._table


class StoredPlan(_Stored):
    """The SplitPlan of the file, with the same attributes (split_of, fold_of, kpi_users...)."""

    def _from_doc(self, doc: dict) -> SplitPlan:
        plan = doc["plan"]
        return SplitPlan(frozenset(plan["kpi_users"]), frozenset(plan["validation_users"]),
                         frozenset(plan["train_users"]),
                         tuple(frozenset(fold) for fold in plan["folds"]))

    def __getattr__(self, name: str):
        if name.startswith("_"):  # never load while pickling or copying
            raise AttributeError(name)
        return getattr(self.table(), name)


class StoredUsers(_Stored, Mapping):
    """One dataset's users (id -> metadata) from the file, as a read-only mapping."""

    def __init__(self, path: str, dataset: str):
        super().__init__(path)
        self.dataset = dataset

    def __getstate__(self) -> dict:
        return {"path": self.path, "dataset": self.dataset}

    def _from_doc(self, doc: dict) -> dict:
        return doc["users"][self.dataset]

    def __getitem__(self, user: str) -> dict:
        return self.table()[user]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table())

    def __len__(self) -> int:
        return len(self.table())
