// Sources hand out raw records in batches and learn, through Ack, which ones are durable.
// A source never loses a record it handed out: failed records are routed, not dropped.
#pragma once
#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <string>

#include "core/batch.h"
#include "core/clock.h"
#include "core/status.h"
#include "sim/simulator.h"

namespace iotpipe {

enum class PollResult { kData, kIdle, kEnd };

// The Source contract (Benthos inputs, Vector sources), six methods:
//   Start, then Poll repeatedly on one thread (the source thread), Ack from the sink thread,
//   Stop once after the pipeline has stopped. Lag and Describe from any thread.
// Every record handed out carries a source position (RawBatch::origins: one per record) when the
// source has positions (Kafka); sources without (simulator, files) leave origins empty and ignore
// Ack. A source never loses a record it handed out: it learns through Ack what is durable, and a
// record not acknowledged is handed out again after a restart (by this or another consumer).
// Partitioned sources also implement PartitionedSource (sources/partitioned.h); sources with figures
// of their own, SourceFigures (below).
class Source {
 public:
  virtual ~Source() = default;
  virtual Status Start() { return Status::OK(); }
  // Appends up to max records to out (which is Clear()ed first). kIdle: nothing right now.
  virtual PollResult Poll(RawBatch& out, size_t max) = 0;
  // Records at or below these positions (per partition) are durably stored and committed.
  virtual void Ack(const OffsetMap& durable) {}
  // Ends the source after the pipeline stopped; returns why it ended early, if it did.
  virtual Status Stop() { return Status::OK(); }
  // Consumer lag in records, if known (-1 otherwise). Called from another thread.
  virtual int64_t Lag() const { return -1; }
  virtual std::string Describe() const = 0;
};

// Optional, beside Source: a source with figures of its own (e.g. mqtt_reconnects, mqtt_duplicates,
// mqtt_connected), shown on the progress line and exported on /metrics as iotpipe_source_<name>.
// Called from another thread.
class SourceFigures {
 public:
  virtual ~SourceFigures() = default;
  virtual std::map<std::string, int64_t> Counters() const = 0;
};

// Optional, beside Source: a finite source that knows how much of its input it has handed out, as a
// fraction in [0, 1] (negative: unknown, e.g. a stream), for the progress line's percentage and ETA.
// Called from another thread.
class SourceProgress {
 public:
  virtual ~SourceProgress() = default;
  virtual double Done() const = 0;
};

// The embedded source: a simulated fleet, paced by a clock or as fast as possible.
struct SimSourceOptions {
  SimConfig sim;
  bool realtime = false;    // pace by the clock (rate finite) or as fast as possible (max)
  int64_t max_events = -1;  // stop after this many records (-1: no limit)
  int64_t max_steps = -1;   // stop after this many readings per sensor (from --duration)
  double speedup = 0;       // realtime with sensor time running this many times faster than the clock (0: off)
};

class SimSource final : public Source, public SourceProgress {
 public:
  SimSource(const SimSourceOptions& opt, Clock* clock);
  PollResult Poll(RawBatch& out, size_t max) override;
  std::string Describe() const override;
  double Done() const override { return done_.load(std::memory_order_relaxed); }
  int64_t sent() const { return sent_; }
  int64_t malformed() const { return malformed_; }

 private:
  SimSourceOptions opt_;
  Clock* clock_;
  FleetSimulator sim_;
  int64_t pace0_ = -1;  // clock time of the first poll (speedup pacing)
  int64_t Due();
  int64_t sent_ = 0, malformed_ = 0;
  std::atomic<double> done_{-1};  // of max_events or max_steps; -1: unbounded
};

// JSON lines from a file or standard input ("-").
// A regular file is read line by line in batches of up to `max`. Standard input and other streams
// (pipes, terminals, sockets) are read as data arrives: Poll waits at most 100 ms for input and
// hands out the complete lines it has, so a record reaches the pipeline within a poll of its
// arrival (never held back for a full batch or end of input), and a stop request (Ctrl-C) is
// seen within 100 ms. A last line without a newline is handed out at end of input.
class FileSource final : public Source, public SourceProgress {
 public:
  explicit FileSource(std::string path) : path_(std::move(path)) {}
  Status Start() override;
  PollResult Poll(RawBatch& out, size_t max) override;
  std::string Describe() const override { return "file:" + path_; }
  double Done() const override { return done_.load(std::memory_order_relaxed); }
  ~FileSource() override;

 private:
  PollResult PollStream(RawBatch& out, size_t max);
  std::string path_;
  FILE* f_ = nullptr;
  bool own_ = false;
  char* line_ = nullptr;
  size_t cap_ = 0;
  // Streams: read(2) on fd_ into pending_ (an incomplete last line stays there).
  int fd_ = -1;
  bool eof_ = false;
  std::string pending_;
  size_t pending_pos_ = 0;
  int64_t size_ = -1;             // a regular file's size in bytes
  std::atomic<double> done_{-1};  // bytes read / size_; -1: a stream
};

}  // namespace iotpipe
