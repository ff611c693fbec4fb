# The two commands of the README, and a few more. Each installs what is missing first.
#   make run    build, then run the quickstart sweep on the CPU (table, results/mmi.sqlite, results/report.html)
#   make test   build, then run every test
#   PRESET=cuda make test   the same with the CUDA kernels (needs nvcc; tests that need a GPU skip without one)
PRESET ?= cpu
BUILD := build/$(PRESET)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# The project venv (made by setup) provides LibTorch; decided when the recipe runs, after setup.
PYTHON = $$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )
# nvcc lives outside PATH on a fresh CUDA install; LibTorch's CMake needs the toolkit either way.
export PATH := $(PATH):/usr/local/cuda/bin

.PHONY: all setup configure build run test bench clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake --preset $(PRESET) -DCMAKE_PREFIX_PATH="$$($(PYTHON) -c 'import torch; print(torch.utils.cmake_prefix_path)')" >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/harness/mmi run configs/quickstart.yaml --html results/report.html

test: build
	@ctest --preset $(PRESET) -j $(JOBS)

bench: build
	$(BUILD)/kernels/mmi_kernel_bench --benchmark_out=results/cpu_bench.json --benchmark_out_format=json

clean:
	rm -rf build
