// A hand-written Parquet writer for the two fixed hot-path schemas (sensor_readings, dead_letters).
//
// It writes exactly the schema DuckDB's COPY ... (FORMAT parquet) writes for these tables (same
// column order, physical/converted/logical types, all columns OPTIONAL, TIMESTAMP micros not
// adjusted to UTC), straight from columnar buffers, without a database in between:
//  - strings of low cardinality (sensor_id, anomaly_type, model_version): one PLAIN dictionary page
//    per column chunk + RLE_DICTIONARY indices (RLE/bit-packed hybrid);
//  - doubles, floats, int32/int64, other strings: PLAIN; booleans: PLAIN (bit-packed);
//  - definition levels: RLE/bit-packed hybrid, bit width 1; data pages v1, one per column chunk;
//  - zstd (libzstd) or no compression; statistics (min/max/null_count) per column chunk;
//  - the Thrift compact-protocol footer written by hand.
// The file is written to `path` (not fsynced: the caller commits it, e.g. CommitFile).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/batch.h"
#include "core/env.h"
#include "core/interner.h"
#include "core/status.h"

namespace iotpipe {

// The sensor_readings columns as the store buffers them (string columns as interner ids).
struct ReadingColumns {
  std::vector<uint32_t> sensor;
  std::vector<int64_t> ts_us;
  std::vector<double> value;
  std::vector<uint8_t> gt;     // 0, 1 or ReadingBatch::kNoLabel (NULL)
  std::vector<uint16_t> type;  // ReadingBatch::kNoType = NULL
  std::vector<int64_t> processing_ts_us;
  std::vector<uint8_t> predicted;
  std::vector<float> score;
  std::vector<uint16_t> model;

  size_t size() const { return sensor.size(); }
  void Clear() {
    sensor.clear();
    ts_us.clear();
    value.clear();
    gt.clear();
    type.clear();
    processing_ts_us.clear();
    predicted.clear();
    score.clear();
    model.clear();
  }
  void Append(const ReadingBatch& b, size_t i) {
    sensor.push_back(b.sensor[i]);
    ts_us.push_back(b.ts_us[i]);
    value.push_back(b.value[i]);
    gt.push_back(ReadingBatch::Labelled(b.gt[i]) ? b.gt[i] != 0 : ReadingBatch::kNoLabel);
    type.push_back(b.type[i]);
    processing_ts_us.push_back(b.processing_ts_us);
    predicted.push_back(b.predicted[i] != 0);
    score.push_back(b.score[i]);
    model.push_back(b.model[i]);
  }
  // Appends rows [from, to) of b (no filtering).
  void AppendRange(const ReadingBatch& b, size_t from, size_t to);
};

// The dead_letters columns. source: "embedded" or "kafka:<topic>"; the Kafka fields are NULL
// where has_origin is 0.
struct DeadLetterColumns {
  std::vector<int64_t> received_ts_us;
  std::vector<std::string> reason, raw, source;
  std::vector<uint8_t> has_origin;
  std::vector<int32_t> kafka_partition;
  std::vector<int64_t> kafka_offset;

  size_t size() const { return received_ts_us.size(); }
  void Clear() {
    received_ts_us.clear();
    reason.clear();
    raw.clear();
    source.clear();
    has_origin.clear();
    kafka_partition.clear();
    kafka_offset.clear();
  }
};

struct ParquetWriterOptions {
  std::string compression = "zstd";  // zstd | uncompressed
  int zstd_level = 1;
  size_t row_group_rows = 122880;  // as the DuckDB path (ROW_GROUP_SIZE 122880); at most 1M
  Env* env = nullptr;              // where the file is written (one Append of the whole file); null: Env::Default()
};

class ParquetWriter {
 public:
  explicit ParquetWriter(ParquetWriterOptions opt = {});
  ~ParquetWriter();
  ParquetWriter(const ParquetWriter&) = delete;
  ParquetWriter& operator=(const ParquetWriter&) = delete;

  // True if the writer implements this codec (else the caller uses DuckDB).
  static bool Supports(const std::string& compression);

  Status WriteReadings(const std::string& path, const ReadingColumns& c, const Interner& sensors, const Interner& types,
                       const Interner& models, uint64_t* bytes = nullptr);
  Status WriteDeadLetters(const std::string& path, const DeadLetterColumns& c, uint64_t* bytes = nullptr);

  struct Chunk;   // column chunk metadata (internal)
  struct Column;  // schema column (internal)

 private:
  void StartFile();
  void Page(int page_type, const std::string& payload, int32_t num_values, int encoding, Chunk* ch);
  void FinishFile(const std::vector<Column>& schema, const std::vector<std::vector<Chunk>>& groups,
                  const std::vector<int64_t>& group_rows, int64_t rows);
  Status WriteOut(const std::string& path, uint64_t* bytes);

  ParquetWriterOptions opt_;
  int codec_ = 0;
  void* zctx_ = nullptr;
  std::string out_;  // the whole file
  std::string payload_, dict_, comp_, header_;
  std::vector<int32_t> remap_;   // interner id -> dictionary index (-1 unset)
  std::vector<uint32_t> idx_;    // dictionary indices of one chunk
  std::vector<uint8_t> levels_;  // definition levels of one chunk
};

}  // namespace iotpipe
