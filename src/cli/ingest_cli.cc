#include "cli/ingest_cli.h"

namespace iotpipe::cli {

void IngestArgs::Add(CLI::App* app) {
  app->add_option("--ingest-max-body", o.max_body_bytes,
                  "HTTP ingestion (--source http): longest request body in bytes, after gzip (413 beyond)")
      ->check(CLI::Range(size_t{1024}, size_t{1} << 30));
  app->add_option("--ingest-queue-bytes", o.max_queue_bytes,
                  "HTTP ingestion: bytes of records accepted and not yet handed to the pipeline (429 beyond)")
      ->check(CLI::Range(size_t{1} << 16, size_t{16} << 30));
  app->add_option("--ingest-timeout", o.request_timeout_s,
                  "HTTP ingestion: seconds a request waits for its records to be durable (503 after)")
      ->check(CLI::PositiveNumber);
  app->add_option("--ingest-name", o.name,
                  "HTTP ingestion: names the positions (files http-<name>-p0-..., marker _offsets/http-<name>-p0); "
                  "one processor per name and data directory");
}

HttpSourceOptions IngestArgs::SourceOptions(const InputMapping& mapping, double exit_when_idle_s) const {
  HttpSourceOptions s = o;
  s.mapping = mapping;
  s.exit_when_idle_s = exit_when_idle_s;
  return s;
}

Status AttachHttpSource(HttpSource* src, Pipeline& p) {
  for (auto& [id, m] : src->mappings()) {
    Status s = p.processor().SetInputMapping(m, id);
    if (!s.ok()) return s;
  }
  p.AddSink(src->observer());
  return Status::OK();
}

}  // namespace iotpipe::cli
