"""Compile the pipeline: `python -m pipelines.compile [pipeline.yaml]` (what `make compile`
runs; the committed pipeline.yaml must equal a fresh compile, a test checks it)."""

import json
import re
import sys

from kfp import compiler

from pipelines.gesturenet_pipeline import gesturenet_pipeline

# KFP's header comment prints dict defaults in protobuf map order, which changes from run to
# run; rewrite those lines as sorted JSON so that the file is reproducible.
DICT_DEFAULT = re.compile(r"^#(\s+)(\w+): dict \[Default: .*\]$")


def stable_header(text: str) -> str:
    inputs = gesturenet_pipeline.component_spec.inputs

    def fix(match: re.Match) -> str:
        name = match.group(2)
        value = json.dumps(inputs[name].default, sort_keys=True)
        return f"#{match.group(1)}{name}: dict [Default: {value}]"

    return "\n".join(DICT_DEFAULT.sub(fix, line) for line in text.split("\n"))


def main(argv: list[str]) -> int:
    target = argv[0] if argv else "pipeline.yaml"
    compiler.Compiler().compile(gesturenet_pipeline, target)
    with open(target) as handle:
        text = stable_header(handle.read())
    with open(target, "w") as handle:
        handle.write(text)
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
