# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# The install is redone only when pyproject.toml or the lock file changes.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
WORKSPACE := workspace

# Where the hand-landmark network is put (gesturenet_lib.families.hand_landmarks.assets reads the same).
export GESTURENET_MODELS_DIR ?= $(HOME)/.cache/gesturenet-kfp/models

.PHONY: setup models browser containers test lint demo demo-containers demo-resnet demo-cli \
	compile submit images docs clean

setup: $(STAMP) models

$(STAMP):
	@rm -f $(VENV)/.installed-*
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	@touch $@

# The pretrained hand-landmark network, taken out of the mediapipe 0.10.21 wheel (hash-checked)
# and converted to ONNX; skipped in well under a second when already there.
models: $(STAMP)
	$(BIN)/python -m gesturenet_lib.families.hand_landmarks.assets

# Debian's Chromium, for the test that renders the evaluation report headless.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's podman (with runc and the network plugins) and mmdebstrap, for the container image
# and the tests that build and run it; nothing when a Docker daemon answers.
containers:
	@docker info >/dev/null 2>&1 || { command -v podman >/dev/null && command -v mmdebstrap \
		>/dev/null; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install \
		-y -qq podman runc mmdebstrap containernetworking-plugins iptables >/dev/null; }

test: setup browser containers
	$(BIN)/ruff check gesturenet_lib components pipelines tests bench
	$(BIN)/python -m pytest -n 2 -q tests

lint: setup
	$(BIN)/ruff check gesturenet_lib components pipelines tests bench

# Regenerate the spec reference (docs/specs.md) from the spec classes.
docs: setup
	$(BIN)/python -m gesturenet_lib.specs.reference docs/specs.md

# The whole KFP pipeline on this machine (KFP's local runner) on the bundled HaGRID sample,
# with the family that is accurate from a few hundred photos (hand_landmarks): a spec change.
demo: setup
	GESTURENET_KEY=$${GESTURENET_KEY:-demo-key} $(BIN)/python -m pipelines.run_local \
		--root $(WORKSPACE)/kfp-landmarks --train_spec specs/landmark_train_spec.json \
		--dataset_spec specs/landmark_dataset_config.json --export_data_type fp32 --full_frame_eval

# The demo pipeline with every task in the project's image (KFP's DockerRunner, no network).
demo-containers: images
	GESTURENET_KEY=$${GESTURENET_KEY:-demo-key} $(BIN)/python -m pipelines.run_local --containers \
		--root $(WORKSPACE)/kfp-containers --train_spec specs/landmark_train_spec.json \
		--dataset_spec specs/landmark_dataset_config.json --export_data_type fp32 --full_frame_eval

# The same pipeline with a ResNet trained from scratch, 3-fold cross-validation and INT8.
demo-resnet: setup
	GESTURENET_KEY=$${GESTURENET_KEY:-demo-key} $(BIN)/python -m pipelines.run_local \
		--root $(WORKSPACE)/kfp --k_folds 3 --cross_validate

# The same subtasks through the CLI, one by one.
demo-cli: setup
	$(BIN)/gesturenet validate --dataset_spec specs/dataset_config.json \
		--experiment_spec specs/dataset_experiment_config.json -e specs/train_spec.json
	$(BIN)/gesturenet dataset_import --format hagrid --images data/hagrid-sample/dataset \
		--annotations data/hagrid-sample/annotations --output $(WORKSPACE)/original/hagrid
	$(BIN)/gesturenet dataset_convert --dataset_spec specs/dataset_config.json \
		--experiment_spec specs/dataset_experiment_config.json --k_folds 0 \
		--output_filename $(WORKSPACE)/data.json --experiment_name v1
	GESTURENET_KEY=$${GESTURENET_KEY:-demo-key} $(BIN)/gesturenet train -e specs/train_spec.json

# Compile the pipeline; the committed pipeline.yaml must equal this (a test checks it).
compile: setup
	$(BIN)/python -m pipelines.compile pipeline.yaml

# Start a run on a Kubeflow cluster: make submit HOST=https://... EXPERIMENT=name PARAMS=params.yaml
submit: setup
	$(BIN)/gesturenet pipeline submit --host $(HOST) --experiment $(EXPERIMENT) --params $(PARAMS) \
		$(if $(NAMESPACE),--namespace $(NAMESPACE),)

# The CPU image, tagged $GESTURENET_IMAGE or <registry>/gesturenet:<version>, with a Docker
# daemon or podman (its Debian base made from Debian's archive where no registry answers);
# rebuilt only when its inputs changed. GPU=1 also builds the GPU image where its base can be
# pulled.
images: setup containers
	$(BIN)/python -m pipelines.image_build $(if $(GPU),--gpu,)

clean:
	rm -rf $(WORKSPACE) .pytest_cache .ruff_cache
