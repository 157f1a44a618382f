# iotpipe — the two commands: `make run` and `make test`.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DIOTPIPE_WERROR=ON
BIN   := $(BUILD)/iotpipe

.PHONY: all deps build run test clean bench fmt

all: build

deps:
	@scripts/deps

$(BUILD)/build.ninja:
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null

build: deps $(BUILD)/build.ninja
	@cmake --build $(BUILD) -j $(JOBS)

# The embedded pipeline on sensible defaults: 100 sensors, real time, ./data, dashboard on 127.0.0.1:8080.
run: build
	$(BIN) run --sensors 100 --data-dir ./data

# Every test: unit, integration (DuckDB, Parquet, Kafka, browser) and end-to-end CLI tests.
test: build
	@scripts/test $(BUILD)

bench: build
	$(BIN) bench

clean:
	rm -rf $(BUILD)
