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
// File names: embedded runs write part-<run>-<seq>.parquet; Kafka sources write
// kafka-<topic>-p<partition>-o<first>-<last>.parquet, so the highest durable offset of every
// partition can be recovered from the names alone (the Kafka Connect HDFS/S3 sink rule).
// Closed hour partitions are compacted into one file per source partition, crash-safely.
//
// Kafka mode (exactly once): the files of one Kafka partition are flushed together (every hour,
// readings and dead letters), and only then is the partition's commit marker
// data/_offsets/<topic>-p<P> (the last offset handled) written atomically. A file whose first
// offset is above the marker was written but never committed: RecoverKafkaPartition deletes it when
// the partition is (re)assigned, and consumption resumes at marker + 1. Compaction only merges
// committed files. So a crash at any point neither loses nor duplicates a row.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/duck.h"
#include "core/interner.h"
#include "core/metrics.h"
#include "core/status.h"
#include "sinks/parquet_writer.h"

namespace iotpipe {

struct StoreOptions {
  std::string data_dir = "data";
  // Flush a partition at this many buffered rows. Smaller flushes are shorter bursts of the sink
  // thread, which the queues absorb: at --rate max, 1M-row flushes (~0.2 s of encoding) filled
  // the queues and stalled the parser; 250k rows with 64 queued batches: 2.38M -> 2.98M events/s
  // (medians of 4, 12M events). Compaction merges the files of a closed hour.
  size_t max_rows = 250000;
  int64_t max_delay_us = 1000000;     // ... or when its oldest buffered row is this old
  std::string compression = "zstd";
  // native: the hand-written writer (zstd/uncompressed); duckdb: buffer tables + COPY (any codec).
  std::string writer = "native";
  std::string kafka_topic;            // set by the Kafka source: names files by offsets
  int duck_threads = 1;
  // Compaction merges the row groups of a closed hour's files as they are (no re-encoding,
  // sinks/parquet_merge.h) when they average at least this many rows per row group; smaller ones
  // (slow streams: many tiny row groups) are re-encoded through DuckDB into full row groups.
  size_t compact_merge_min_rows = 16384;
  Histogram* e2e_latency = nullptr;   // if set: observes (stored time - event time) of sampled rows
};

struct StoreStats {
  uint64_t rows = 0, dead = 0, files = 0, bytes = 0, compactions = 0;
};

// Per Kafka partition, the highest offset durably stored (by file names), or -1.
using OffsetMap = std::map<int32_t, int64_t>;

class ParquetStore {
 public:
  static constexpr size_t kLatencySample = 16;
  static Result<std::unique_ptr<ParquetStore>> Open(const StoreOptions& opt, const Interner* sensors,
                                                    const Interner* types, const Interner* models);
  ~ParquetStore();

  // Buffers readings and dead letters; flushes partitions that are full.
  Status Append(const ProcessedBatch& b);
  // Flushes partitions older than max_delay (call periodically).
  Status FlushDue(int64_t now_mono_us);
  // Writes every buffered row durably. After it returns OK, all appended rows are on disk.
  Status Flush();
  // Compacts hour partitions whose hour ended at least `grace_us` before the newest event time seen.
  Status CompactClosed(int64_t grace_us = 10 * 60 * 1000000LL);
  // Compacts one partition directory now (tests, tools).
  Status CompactDir(const std::string& dir);

  size_t buffered_rows() const { return buffered_; }
  const StoreStats& stats() const { return stats_; }
  // Highest offsets durably stored per Kafka partition (readings and dead letters separately).
  const OffsetMap& readings_offsets() const { return readings_hw_; }
  const OffsetMap& dead_offsets() const { return dead_hw_; }
  // Kafka mode: flushes every buffered row of one Kafka partition, then commits its marker.
  Status FlushKafkaPartition(int32_t kpart);
  // Kafka mode: the committed marker of each partition (-1 none), read from data_dir/_offsets.
  static OffsetMap ReadKafkaMarkers(const std::string& data_dir, const std::string& topic);
  static std::string KafkaMarkerPath(const std::string& data_dir, const std::string& topic, int32_t kpart);
  // Kafka mode, on partition assignment: deletes files of (topic, kpart) written after the last
  // commit marker and returns the marker (-1: nothing committed; consume from the beginning).
  static Result<int64_t> RecoverKafkaPartition(const std::string& data_dir, const std::string& topic,
                                               int32_t kpart);
  // Scans a data directory's file names for Kafka offsets.
  static void ScanOffsets(const std::string& dir, const std::string& topic, OffsetMap* out);
  // Finishes interrupted compactions and removes temporary files left by a crash.
  static Status Recover(const std::string& dir);

 private:
  struct Part;
  ParquetStore() = default;
  Status AppendReadings(const ReadingBatch& b);
  Status AppendDead(const DeadLetterBatch& d);
  Part* GetPart(bool dead, int64_t hour, int32_t kpart);
  Status FlushPart(Part* p);
  bool kafka() const { return !opt_.kafka_topic.empty(); }
  Status AppendReadingsNative(const ReadingBatch& b);
  Status WritePartNative(Part* p, const std::string& tmp, uint64_t* bytes);

  StoreOptions opt_;
  std::unique_ptr<Duck> db_;
  bool native_ = true;                   // hand-written Parquet writer (else DuckDB COPY)
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
  OffsetMap readings_hw_, dead_hw_;
  OffsetMap appended_max_;     // Kafka mode: highest offset appended per partition
  OffsetMap committed_;        // Kafka mode: markers written by this store
  std::map<std::string, bool> dirs_made_;
};

}  // namespace iotpipe
