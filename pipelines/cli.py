"""`gesturenet pipeline compile|submit`: lives with the pipeline (the library never imports kfp;
the CLI imports this module only when the `pipeline` subcommand runs)."""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml

from gesturenet_lib.errors import UserInputError
from pipelines.compile import main as compile_main
from pipelines.gesturenet_pipeline import gesturenet_pipeline

REPO = Path(__file__).resolve().parents[1]
TYPES = {"string": str, "integer": int, "float": (int, float), "boolean": bool, "dict": dict,
         "list": list}


def _key_like(value, at: str):
    """JSON paths inside a parameter's value whose name looks like a key (a spec holds none)."""
    if isinstance(value, dict):
        for name, inner in value.items():
            path = f"{at}.{name}"
            if "key" in str(name).lower():
                yield path
            yield from _key_like(inner, path)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _key_like(inner, f"{at}[{i}]")


def check_params(params_file: str) -> dict:
    """The run's parameters, checked against the pipeline's inputs (names and types)."""
    try:
        params = yaml.safe_load(Path(params_file).read_text()) or {}
    except FileNotFoundError:
        raise UserInputError(f"{params_file}: file not found") from None
    except yaml.YAMLError as err:
        raise UserInputError(f"{params_file}: invalid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(params, dict):
        raise UserInputError(f"{params_file}: must be a mapping of parameter -> value")
    inputs = gesturenet_pipeline.component_spec.inputs
    for name, value in params.items():
        if "key" in name.lower() and name not in inputs:
            raise UserInputError(f"{params_file}: {name}: the model key is never a pipeline "
                                 "parameter; it comes from the Kubernetes Secret")
        nested = next(_key_like(value, name), None)
        if nested is not None:
            raise UserInputError(f"{params_file}: {nested}: looks like a key; the model key is "
                                 "never a pipeline parameter (pipeline parameters are stored "
                                 "and shown in the Kubeflow UI); it comes from the Kubernetes "
                                 "Secret")
        if name not in inputs:
            close = difflib.get_close_matches(name, list(inputs), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "allowed: " + ", ".join(inputs)
            raise UserInputError(f"{params_file}: {name}: unknown parameter; {hint}")
        kind = str(inputs[name].type).lower()
        expected = TYPES.get("list" if kind.startswith(("typing.list", "list")) else kind)
        is_bool = isinstance(value, bool)
        if expected is not None and (not isinstance(value, expected) or
                                     (is_bool and expected is not bool)):
            raise UserInputError(f"{params_file}: {name} = {value!r}: must be "
                                 f"{str(inputs[name].type).lower()}")
    missing = [n for n, spec in inputs.items() if spec.default is None and not spec.optional
               and n not in params]
    if missing:
        raise UserInputError(f"{params_file}: missing required parameter(s): "
                             + ", ".join(missing))
    return params


def submit(host: str, experiment: str, params_file: str, namespace: str | None,
           package: str) -> str:
    """Upload ``package`` and start a run; returns the run's URL."""
    import kfp

    params = check_params(params_file)
    if not Path(package).exists():
        raise UserInputError(f"--package {package}: file not found (run `make compile`)")
    try:
        client = kfp.Client(host=host, namespace=namespace)
        run = client.create_run_from_pipeline_package(
            package, arguments=params, experiment_name=experiment, namespace=namespace)
    except Exception as err:  # kfp raises urllib3 / ApiException / ValueError
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserInputError(f"--host {host}: cannot submit the run: {first[:160]}") from None
    return f"{host.rstrip('/')}/#/runs/details/{run.run_id}"


def run_command(args) -> int:
    if args.pipeline_command == "compile":
        return compile_main([args.output])
    url = submit(args.host, args.experiment, args.params, args.namespace, args.package)
    print(f"submitted: {url}")
    return 0
