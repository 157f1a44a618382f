// Sources hand out raw records in batches and learn, through Ack, which ones are durable.
// A source never loses a record it handed out: failed records are routed, not dropped.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/batch.h"
#include "core/clock.h"
#include "core/status.h"
#include "sim/simulator.h"
#include "sinks/parquet_store.h"

namespace iotpipe {

enum class PollResult { kData, kIdle, kEnd };
struct Dictionaries;
class Processor;

class Source {
 public:
  virtual ~Source() = default;
  virtual Status Start() { return Status::OK(); }
  // Appends up to max records to out (which is Clear()ed first). kIdle: nothing right now.
  virtual PollResult Poll(RawBatch& out, size_t max) = 0;
  // Records up to these offsets (per Kafka partition) are durably stored.
  virtual void Ack(const OffsetMap& readings, const OffsetMap& dead) {}
  virtual void Stop() {}
  virtual std::string Describe() const = 0;
  // Consumer lag in records, if known (-1 otherwise). Called from another thread.
  virtual int64_t Lag() const { return -1; }
  // The pipeline hands the source a function that blocks until every record handed out so far is
  // durably stored and acknowledged (false if the pipeline is failing). Call it only from Poll's
  // thread (e.g. a Kafka partition revocation, so that the next owner starts after our last row).
  virtual void SetDrain(std::function<bool()> drain) {}
  // Lets the source adapt the store (e.g. Kafka names files by offsets) before it is opened.
  virtual void BindStore(StoreOptions& store) {}
  // Called on the sink thread for each processed batch before it is stored (dead-letter and anomaly
  // topics). An error fails the sink: the batch is not stored and nothing since the last flush is
  // acknowledged, so it is replayed by whoever consumes next (at least once for the side records).
  virtual Status OnBatch(const ProcessedBatch& b, const Dictionaries& dicts) { return Status::OK(); }
  // Why the source ended early, if it did (read after the pipeline has stopped).
  virtual Status error() const { return Status::OK(); }
  // The pipeline's processor, for sources that move detector state with their partitions (Kafka).
  // Its state may be read or restored only while the pipeline is drained (see SetDrain) or stopped.
  virtual void BindProcessor(Processor* proc) {}
  // Consumer lag per source partition, as last measured (empty if not applicable). Any thread.
  virtual std::map<int32_t, int64_t> LagByPartition() const { return {}; }
};

// The embedded source: a simulated fleet, paced by a clock or as fast as possible.
struct SimSourceOptions {
  SimConfig sim;
  bool realtime = false;        // pace by the clock (rate finite) or as fast as possible (max)
  int64_t max_events = -1;      // stop after this many records (-1: no limit)
  int64_t max_steps = -1;       // stop after this many readings per sensor (from --duration)
  double speedup = 0;           // realtime with sensor time running this many times faster than the clock (0: off)
};

class SimSource final : public Source {
 public:
  SimSource(const SimSourceOptions& opt, Clock* clock);
  PollResult Poll(RawBatch& out, size_t max) override;
  std::string Describe() const override;
  int64_t sent() const { return sent_; }
  int64_t malformed() const { return malformed_; }

 private:
  SimSourceOptions opt_;
  Clock* clock_;
  FleetSimulator sim_;
  int64_t pace0_ = -1;  // clock time of the first poll (speedup pacing)
  int64_t Due();
  int64_t sent_ = 0, malformed_ = 0;
};

// JSON lines from a file or standard input ("-").
class FileSource final : public Source {
 public:
  explicit FileSource(std::string path) : path_(std::move(path)) {}
  Status Start() override;
  PollResult Poll(RawBatch& out, size_t max) override;
  std::string Describe() const override { return "file:" + path_; }
  ~FileSource() override;

 private:
  std::string path_;
  FILE* f_ = nullptr;
  bool own_ = false;
  char* line_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace iotpipe
