// HTTP ingestion source: bodies POSTed to the server (http/ingest.cc: POST /api/ingest and the
// InfluxDB v2 write path) become records, and a request is answered only once its records are durable.
//
// Flow:
//   Ingest (an HTTP thread) splits the body into records (lines; the elements of a JSON array),
//     queues them (bounded in bytes: a full queue answers kQueueFull at once, nothing queued) and
//     waits for its answer.
//   Poll (the source thread) hands the queued records out, each with a position (partition 0), in
//     batches of one input mapping (RawBatch::mapping: JSON or line protocol at a precision).
//   The observer sink (observer(), registered after the store) sees each batch once the store holds
//     it and counts per request its readings, its dead letters, and the highest position that
//     produced a row (a record may produce none: line protocol with only string fields).
//   Ack (the commit markers of the offset ledger are written) completes the requests whose rows are
//     all committed: Ingest returns kDurable with the counts.
//
// Positions are a PartitionedSource's with one partition: files http-<name>-p0-o<first>-<last>.parquet,
// the commit marker _offsets/http-<name>-p0; every run resumes numbering after the marker. After a
// crash the files past the marker hold records of requests that were never answered with success:
// the ledger deletes them on start and the clients (which got no answer) send them again. So an
// answered request is stored exactly once; an unanswered one at most once per attempt.
//
// Stop answers every request still waiting with kUnavailable (not stored, or not known durable).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "parse/mapping.h"
#include "sinks/sink.h"
#include "sources/partitioned.h"
#include "sources/source.h"

namespace iotpipe {

struct HttpSourceOptions {
  std::string name = "ingest";         // positions: http-<name>-p0 ([A-Za-z0-9_.-])
  size_t max_body_bytes = 8u << 20;    // longer bodies: 413 (http/ingest.cc)
  size_t max_queue_bytes = 64u << 20;  // bodies queued and not yet handed to the pipeline: 429 beyond
  double request_timeout_s = 60;       // a request not durable by then is answered kTimeout
  double exit_when_idle_s = 0;         // > 0: end once nothing arrived and nothing is pending for this long
  InputMapping mapping;                // the pipeline's: JSON bodies use it when it is a JSON shape
};

enum class BodyFormat : uint8_t { kJson, kLineProtocol };  // kJson: JSON lines, or one JSON array

struct IngestReply {
  enum Code : uint8_t { kDurable, kBadBody, kQueueFull, kUnavailable, kTimeout };
  Code code = kDurable;
  int64_t records = 0, dead_letters = 0, readings = 0;
  std::string error;
};

class HttpSource final : public Source, public PartitionedSource, public SourceFigures {
 public:
  explicit HttpSource(HttpSourceOptions opt);
  ~HttpSource() override;
  const HttpSourceOptions& options() const { return opt_; }

  // HTTP threads. precision: the unit of line protocol timestamps (kAuto: by magnitude).
  IngestReply Ingest(std::string_view body, BodyFormat format, TimeUnit precision = TimeUnit::kAuto);
  // The mappings batches may name (RawBatch::mapping), for Processor::SetInputMapping(m, id).
  std::vector<std::pair<uint16_t, InputMapping>> mappings() const;
  // Counts each request's readings and dead letters; register after the store (Pipeline::AddSink).
  Sink* observer();

  // Source
  Status Start() override;
  PollResult Poll(RawBatch& out, size_t max) override;
  void Ack(const OffsetMap& durable) override;
  Status Stop() override;
  int64_t Lag() const override { return queued_records_.load(); }
  std::string Describe() const override { return "http:" + opt_.name; }
  std::map<std::string, int64_t> Counters() const override;
  // PartitionedSource: one partition (0).
  PositionNames position_names() const override;
  void SetPartitionListener(PartitionListener* l) override { listener_ = l; }
  std::set<int32_t> assigned() const override { return {0}; }
  std::map<int32_t, int64_t> LagByPartition() const override { return {{0, Lag()}}; }

  // The records of a body (blank lines and line protocol comments are none). False: not JSON.
  static bool SplitBody(std::string_view body, BodyFormat format, RawBatch* out, std::string* error);

 private:
  struct Pending;
  class Observer;
  uint16_t MappingFor(BodyFormat f, TimeUnit precision) const;
  bool Recover();
  void HandOut(RawBatch& out, size_t max);  // mu_ held
  void Observe(const ProcessedBatch& b);
  Pending* Find(int64_t position);  // mu_ held
  void Complete();                  // mu_ held
  bool IdleEnd(int64_t now_us);     // mu_ held

  HttpSourceOptions opt_;
  bool json_is_pipelines_ = true;  // the pipeline's mapping reads JSON bodies (else mapping 1: original)
  std::unique_ptr<Observer> observer_;
  PartitionListener* listener_ = nullptr;
  bool recovered_ = false;

  mutable std::mutex mu_;
  std::condition_variable queued_cv_, done_cv_;
  std::deque<std::shared_ptr<Pending>> queue_;     // not yet wholly handed out
  std::deque<std::shared_ptr<Pending>> inflight_;  // handed out (in position order) until answered
  std::deque<int64_t> batch_last_;                 // last position of each batch handed out, in order
  size_t queued_bytes_ = 0;
  int64_t next_pos_ = 0, acked_ = -1;
  int64_t last_activity_us_ = 0;
  bool stopped_ = false;
  std::atomic<int64_t> queued_records_{0}, requests_{0}, queue_full_{0}, records_{0};
};

}  // namespace iotpipe
