// HTTP ingestion options of `process --source http` (sources/http_source.h, http/ingest.h), and its
// wiring into a built pipeline.
#pragma once
#include <CLI/CLI.hpp>

#include "core/status.h"
#include "parse/mapping.h"
#include "pipeline/pipeline.h"
#include "sources/http_source.h"

namespace iotpipe::cli {

struct IngestArgs {
  HttpSourceOptions o;
  void Add(CLI::App* app);
  // The source options for a run whose records are read through `mapping` (the pipeline's).
  HttpSourceOptions SourceOptions(const InputMapping& mapping, double exit_when_idle_s) const;
};

// Before Run: the source's input mappings into the processor, its observer after the store.
Status AttachHttpSource(HttpSource* src, Pipeline& p);

}  // namespace iotpipe::cli
