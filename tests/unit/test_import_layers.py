"""The library's layers: a module imports only from its own layer or the ones below, and no
import circle exists between modules. Every import statement counts, the ones inside functions
too (a lazy import is still a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "gesturenet_lib"

# Lowest first. A module belongs to the first entry whose prefix names it (longest prefix
# wins); every module of the package must be named.
LAYERS: list[tuple[str, ...]] = [
    ("gesturenet_lib.errors", "gesturenet_lib.io", "gesturenet_lib.gcs",
     "gesturenet_lib.local_files", "gesturenet_lib.crypto", "gesturenet_lib.keys",
     "gesturenet_lib.tao_mounts", "gesturenet_lib.gpu", "gesturenet_lib.container_image",
     "gesturenet_lib.ort_cpu"),
    ("gesturenet_lib.specs",),
    # generic building blocks: data, preprocessing, model files, tf.data, ONNX, backends
    ("gesturenet_lib.data", "gesturenet_lib.models", "gesturenet_lib.training.data",
     "gesturenet_lib.training.augment", "gesturenet_lib.training.schedule",
     "gesturenet_lib.training.loop", "gesturenet_lib.training.distribution",
     "gesturenet_lib.export.onnx_export", "gesturenet_lib.export.calibration",
     "gesturenet_lib.export.deploy_configs", "gesturenet_lib.export.kserve_manifests",
     "gesturenet_lib.export.tensorrt_build", "gesturenet_lib.inference.backends",
     "gesturenet_lib.inference.run", "gesturenet_lib.inference.previews",
     "gesturenet_lib.evaluation.metrics", "gesturenet_lib.evaluation.report"),
    # what each model family is, in a folder of its own
    ("gesturenet_lib.families",),
    # the work of each subtask, given the family it needs
    ("gesturenet_lib.training", "gesturenet_lib.export", "gesturenet_lib.inference",
     "gesturenet_lib.evaluation", "gesturenet_lib.serving"),
    ("gesturenet_lib.tasks",),
    ("gesturenet_lib.cli", "gesturenet_lib.__main__"),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_of(module: str) -> int:
    best, layer = -1, None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), index
    assert layer is not None, f"{module}: not in any layer of tests/unit/test_import_layers.py"
    return layer


def _imports(path: Path, module: str) -> set[str]:
    """The package's modules that ``path`` imports (``from a import b`` names a.b when b is a
    module)."""
    known = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    found = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                                + ([base] if base else []))
            named = {f"{base}.{a.name}" for a in node.names}
            found |= named
            if not named <= known:  # names of the module itself, not only its submodules
                found.add(base)
    return {name for name in found if name in known and name != module}


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p, _module_name(p)) for p in PACKAGE.rglob("*.py")}


def test_no_module_imports_from_a_higher_layer():
    upward = [f"{module} (layer {_layer_of(module)}) imports {name} (layer {_layer_of(name)})"
              for module, names in sorted(_graph().items()) for name in sorted(names)
              if name != "gesturenet_lib" and _layer_of(name) > _layer_of(module)]
    assert not upward, "\n".join(upward)


def test_no_import_circle():
    graph = _graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> list[str] | None:
        state[module] = 1
        for name in sorted(graph.get(module, ())):
            if name == "gesturenet_lib" or module == "gesturenet_lib":
                continue  # the package's lazy public API names, never imported at load
            if state.get(name) == 1:
                return path + [module, name]
            if state.get(name) is None and (circle := visit(name, path + [module])):
                return circle
        state[module] = 2
        return None

    for module in sorted(graph):
        if state.get(module) is None:
            circle = visit(module, [])
            assert circle is None, " -> ".join(circle[circle.index(circle[-1]):])


def _defined_names(init: Path) -> set[str]:
    """What a package's ``__init__.py`` defines or imports at its top level."""
    names = set()
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def test_every_import_of_the_package_names_something_that_exists():
    """A moved module leaves no import behind, lazy ones inside functions included, in the
    library and in everything that uses it."""
    known = {_module_name(p) for p in PACKAGE.rglob("*.py")}
    lazy_api = {"gesturenet_lib", "gesturenet_lib.tasks"}  # names resolved by __getattr__
    missing = []
    users = [REPO / name for name in ("gesturenet_lib", "components", "pipelines", "bench",
                                      "tests")]
    for path in sorted(p for folder in users for p in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                missing += [f"{path.relative_to(REPO)}: import {a.name}" for a in node.names
                            if a.name.startswith("gesturenet_lib") and a.name not in known]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "gesturenet_lib") and not node.level:
                if not path.is_relative_to(PACKAGE):  # users take public names only
                    missing += [f"{path.relative_to(REPO)}: {a.name} is private"
                                for a in node.names if a.name.startswith("_")
                                and not a.name.startswith("__")]
                folder = PACKAGE.parent / node.module.replace(".", "/")
                if node.module not in known and not folder.is_dir():  # a namespace package
                    missing.append(f"{path.relative_to(REPO)}: from {node.module}")
                    continue
                init = folder / "__init__.py"
                if not init.exists() or node.module in lazy_api:
                    continue
                defined = _defined_names(init)
                missing += [f"{path.relative_to(REPO)}: from {node.module} import {a.name}"
                            for a in node.names if f"{node.module}.{a.name}" not in known
                            and a.name not in defined]
    assert not missing, "\n".join(missing)


def test_the_checks_catch_an_upward_import():
    """The check itself: a data module importing a task is reported."""
    assert _layer_of("gesturenet_lib.data.dataset_file") < _layer_of("gesturenet_lib.tasks.train")
    assert _layer_of("gesturenet_lib.training.data") < _layer_of("gesturenet_lib.families")
    assert _layer_of("gesturenet_lib.families.hand_landmarks") < _layer_of(
        "gesturenet_lib.training.trainer")
