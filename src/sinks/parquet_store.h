// Durable, partitioned Parquet storage.
//
// Rows are appended to columnar buffers per partition (event hour x source partition) and flushed
// by size or age with the hand-written ParquetWriter (writer "native", the default) or, with
// writer "duckdb", through an in-memory DuckDB table per partition and COPY: to a hidden temporary
// file, fsync, rename, fsync the directory. Closed hours are compacted by concatenating the files'
// row groups (sinks/parquet_merge.h; small row groups are re-encoded by DuckDB). A file is visible
// only once complete, so queries never see a partial file and a crash leaves at most an
// unreferenced temporary file (removed on open).
//
// File names: embedded runs write part-<run>-<seq>.parquet. When records carry source positions
// (StoreOptions::position_files set, e.g. "kafka-<topic>"), files are named
// <position_files>-p<partition>-o<first>-<last>.parquet, so the highest stored position of every
// source partition can be recovered from the names alone (the Kafka Connect HDFS/S3 sink rule).
// Closed hour partitions are compacted into one file per source partition, crash-safely.
//
// Positioned mode: the files of one source partition are flushed together (every hour, readings
// and dead letters), never a partition's rows by size in the middle of a batch; durable() then
// covers the partition's highest appended position. The store knows nothing of commit markers or
// of the source behind the positions: the pipeline's offset ledger (pipeline/offset_ledger.h)
// writes them after the files and recovers from them. Rows at or below a committed position
// (StoreOptions::committed, then durable()) are replays and skipped. Compaction merges only files
// at or below the committed positions (StoreOptions::committed_now) of partitions this store wrote.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/duck.h"
#include "core/env.h"
#include "core/interner.h"
#include "core/metrics.h"
#include "core/status.h"
#include "sinks/parquet_writer.h"
#include "sinks/sink.h"

namespace iotpipe {

struct StoreOptions {
  std::string data_dir = "data";
  // Flush a partition at this many buffered rows. Smaller flushes are shorter bursts of the sink
  // thread, which the queues absorb: at --rate max, 1M-row flushes (~0.2 s of encoding) filled
  // the queues and stalled the parser; 250k rows with 64 queued batches: 2.38M -> 2.98M events/s
  // (medians of 4, 12M events). Compaction merges the files of a closed hour.
  size_t max_rows = 250000;
  int64_t max_delay_us = 1000000;  // ... or when its oldest buffered row is this old
  std::string compression = "zstd";
  // native: the hand-written writer (zstd/uncompressed); duckdb: buffer tables + COPY (any codec).
  std::string writer = "native";
  // Positioned mode (records carry source positions): the file name prefix ("kafka-<topic>"), the
  // dead letters' `source` column, the positions already committed (rows at or below are skipped),
  // and what is committed now (compaction merges only that; null: durable()).
  std::string position_files;
  std::string source_label;
  OffsetMap committed;
  std::function<OffsetMap()> committed_now;
  int duck_threads = 1;
  // Compaction merges the row groups of a closed hour's files as they are (no re-encoding,
  // sinks/parquet_merge.h) when they average at least this many rows per row group; smaller ones
  // (slow streams: many tiny row groups) are re-encoded through DuckDB into full row groups.
  size_t compact_merge_min_rows = 16384;
  // Every file the store writes, commits or removes goes through it (tests: core/fault_env.h).
  Env* env = Env::Default();
  Histogram* e2e_latency = nullptr;  // if set: observes (stored time - event time) of sampled rows
};

struct StoreStats {
  uint64_t rows = 0, dead = 0, files = 0, bytes = 0, compactions = 0;
};

// A durable sink: durable() covers what has been flushed (positioned mode: per source partition).
class ParquetStore final : public Sink {
 public:
  static constexpr size_t kLatencySample = 16;
  static Result<std::unique_ptr<ParquetStore>> Open(const StoreOptions& opt, const Interner* sensors,
                                                    const Interner* types, const Interner* models);
  ~ParquetStore() override;

  // Sink: Write = Append; Tick = FlushDue, and CompactClosed every 5 s; Close = CompactClosed.
  Status Write(const ProcessedBatch& b) override { return Append(b); }
  Status Tick(int64_t now_mono_us) override;
  Status Close() override { return CompactClosed(); }
  const OffsetMap* durable() const override { return &durable_; }
  // The store's in-memory DuckDB, for sinks beside it on the same (sink) thread (the sensors dataset).
  Duck* db() const { return db_.get(); }

  // Buffers readings and dead letters; flushes partitions that are full.
  Status Append(const ProcessedBatch& b);
  // Flushes partitions older than max_delay (call periodically).
  Status FlushDue(int64_t now_mono_us);
  // Writes every buffered row durably. After it returns OK, all appended rows are on disk.
  Status Flush() override;
  // Compacts hour partitions whose hour ended at least `grace_us` before the newest event time seen.
  Status CompactClosed(int64_t grace_us = 10 * 60 * 1000000LL);
  // Compacts one partition directory now (tests, tools).
  Status CompactDir(const std::string& dir);

  size_t buffered_rows() const { return buffered_; }
  const StoreStats& stats() const { return stats_; }
  // Positioned mode: flushes every buffered row of one source partition (durable() then covers it).
  Status FlushSourcePartition(int32_t spart);
  // The highest last position per source partition in the names of files with this prefix under dir.
  static void ScanPositions(const std::string& dir, const std::string& files, OffsetMap* out);
  // Finishes interrupted compactions and removes temporary files left by a crash.
  static Status Recover(const std::string& dir);

 private:
  struct Part;
  ParquetStore() = default;
  Status AppendReadings(const ReadingBatch& b);
  Status AppendDead(const DeadLetterBatch& d);
  Part* GetPart(bool dead, int64_t hour, int32_t kpart);
  Status FlushPart(Part* p);
  Env* env() const { return opt_.env ? opt_.env : Env::Default(); }
  bool positioned() const { return !opt_.position_files.empty(); }
  Status AppendReadingsNative(const ReadingBatch& b);
  Status WritePartNative(Part* p, const std::string& tmp, uint64_t* bytes);
  Status WriteCompacted(const std::string& dir, const std::vector<std::string>& files, const std::string& list,
                        const std::string& tmp);

  StoreOptions opt_;
  std::unique_ptr<Duck> db_;
  bool native_ = true;  // hand-written Parquet writer (else DuckDB COPY)
  std::unique_ptr<ParquetWriter> writer_;
  const Interner* sensors_ = nullptr;
  const Interner* types_ = nullptr;
  const Interner* models_ = nullptr;
  std::map<std::tuple<bool, int64_t, int32_t>, std::unique_ptr<Part>> parts_;
  std::string run_id_;
  uint64_t seq_ = 0;
  uint64_t table_seq_ = 0;
  size_t buffered_ = 0;
  int64_t max_event_us_ = INT64_MIN;
  StoreStats stats_;
  OffsetMap durable_;       // per source partition: every row at or below is on disk (or committed)
  OffsetMap appended_max_;  // positioned mode: highest position appended per partition
  int64_t last_compact_mono_ = 0;
  std::map<std::string, bool> dirs_made_;
};

}  // namespace iotpipe
