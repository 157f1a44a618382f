# iotpipe — the two commands: `make run` and `make test`.
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release -DIOTPIPE_WERROR=ON
BIN   := $(BUILD)/iotpipe

.PHONY: all deps build run test clean bench fmt install

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

# Installs a working iotpipe under PREFIX: bin/iotpipe, lib/ (libiotpipe_torch.so, libduckdb.so),
# share/iotpipe/ (dashboard, uPlot). It finds them relative to itself: the prefix can be moved.
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

bench: build
	$(BIN) bench

clean:
	rm -rf $(BUILD)
