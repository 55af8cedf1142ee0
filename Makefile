# make install: .venv with training, service and test tools. ONNX Runtime: onnxruntime-gpu on Linux x86-64 with an
#               NVIDIA GPU (/dev/nvidia0 or nvidia-smi), else the CPU build; force with `make install ORT=cpu|gpu`.
# make serve:   set up, then serve the explorer on the shipped models at http://127.0.0.1:8000
# make test:    set up, then lint (ruff) and run the whole test suite.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
ORT ?= $(shell $(PY) -c "import os, platform, shutil; print('gpu' if platform.system()=='Linux' and platform.machine()=='x86_64' and (os.path.exists('/dev/nvidia0') or shutil.which('nvidia-smi')) else 'cpu')")
OTHER_ORT := $(if $(filter cpu,$(ORT)),onnxruntime-gpu,onnxruntime)

.PHONY: install serve test lint bench bench-serve gpu-check figures clean

# one stamp per ORT build, so switching builds reinstalls (and removes the other build: both install one module)
$(BIN)/.installed-$(ORT): requirements/*.txt pyproject.toml
	$(PY) -m venv $(VENV)
	rm -f $(BIN)/.installed-*
	-$(BIN)/pip uninstall -q -y $(OTHER_ORT) 2>/dev/null
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements/constraints.txt -r requirements/train.txt -r requirements/serve.txt \
		-r requirements/ort-$(ORT).txt -r requirements/test.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(BIN)/.installed-$(ORT) frontend/static/ort/ort.wasm.min.mjs

# ONNX Runtime Web (pinned in package.json/package-lock.json) for the page's in-browser generator; without npm the
# page uses the server path (its badge says "server")
ORT_WEB := ort.wasm.min.mjs ort-wasm-simd-threaded.mjs ort-wasm-simd-threaded.wasm
frontend/static/ort/ort.wasm.min.mjs: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --ignore-scripts && mkdir -p frontend/static/ort && \
		cp $(addprefix node_modules/onnxruntime-web/dist/,$(ORT_WEB)) frontend/static/ort/; \
	else echo "npm not found: no in-browser generation, the page uses the server"; fi

serve: install
	$(BIN)/infogan serve --host 127.0.0.1 --port 8000

# ruff (config in pyproject.toml) before the tests: CI fails on a lint error or an unformatted file
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install lint
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/export_latency.py

bench-serve: install
	$(BIN)/python benchmarks/serve_latency.py
	$(BIN)/python benchmarks/browser_latency.py

# issue 22's prepared GPU check: service tests on CUDA, the serving benchmark, 200 training steps (under 5 min);
# one FAIL line on a machine without CUDA
gpu-check: install
	benchmarks/gpu_check.sh

# docs/ figures (Fig. 1/2 traversals of the shipped models) and the explorer's screenshots (desktop and phone)
figures: install
	$(BIN)/python scripts/make_docs_figures.py
	$(BIN)/python scripts/make_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache
