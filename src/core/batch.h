// The units that flow between stages: raw wire records, decoded readings (columnar), dead letters.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace iotpipe {

// A record's source position: where it came from, for acknowledgement after a durable write
// (Kafka: partition/offset). Positions grow within a partition.
struct Origin {
  int32_t partition = -1;
  int64_t offset = -1;
};

// Per source partition, a position (e.g. the highest one durably stored; -1: none).
using OffsetMap = std::map<int32_t, int64_t>;

// Raw records as they arrived: one contiguous buffer, record i is data[offsets[i], offsets[i+1]).
// The buffer keeps kPadding readable bytes past its end so simdjson can parse in place.
struct RawBatch {
  static constexpr size_t kPadding = 64;
  std::string data;
  std::vector<uint32_t> offsets{0};
  std::vector<Origin> origins;  // empty, or one per record
  int64_t sent = 0;             // records the producer counts as sent (== size() normally)
  // Records the source cut because they were too long to hold (index, bytes the whole record had), in
  // index order: only a prefix is in data, and the parser dead-letters them as oversize.
  std::vector<std::pair<uint32_t, uint64_t>> cut;
  // Which input mapping decodes every record of the batch: 0 the pipeline's, k > 0 the one the
  // processor registered as k (Processor::SetInputMapping; e.g. HTTP bodies by Content-Type).
  uint16_t mapping = 0;

  size_t size() const { return offsets.size() - 1; }
  std::string_view record(size_t i) const {
    return std::string_view(data.data() + offsets[i], offsets[i + 1] - offsets[i]);
  }
  void Add(std::string_view rec) {
    data.append(rec);
    offsets.push_back(static_cast<uint32_t>(data.size()));
  }
  // Call when done appending: guarantees the padding simdjson needs.
  void Seal() {
    size_t n = data.size();
    data.append(kPadding, '\0');
    data.resize(n);  // capacity keeps the padding
  }
  void Clear() {
    data.clear();
    offsets.assign(1, 0);
    origins.clear();
    cut.clear();
    sent = 0;
    mapping = 0;
  }
};

// Decoded readings in columns. sensor/type/model are ids from the pipeline's interners.
struct ReadingBatch {
  std::vector<uint32_t> sensor;
  std::vector<int64_t> ts_us;  // event time, µs since epoch
  std::vector<double> value;
  std::vector<uint8_t> gt;         // is_anomaly_ground_truth: 0, 1, or kNoLabel (NULL: unlabelled)
  std::vector<uint16_t> type;      // anomaly_type id; kNoType = NULL
  std::vector<float> score;        // anomaly_score in [0, 1]
  std::vector<uint8_t> predicted;  // is_anomaly_predicted
  std::vector<uint16_t> model;     // model_version id
  std::vector<Origin> origins;     // empty, or one per row
  // Wire `asset_id` (Dictionaries::assets id, kNoAsset = absent): empty when no record of the batch
  // carried one, else one per row. Read by the asset detector (detect/asset.h); not stored per row.
  std::vector<uint32_t> asset;
  int64_t processing_ts_us = 0;  // stamped when the batch was decoded

  static constexpr uint16_t kNoType = 0xFFFF;
  static constexpr uint32_t kNoAsset = 0xFFFFFFFF;
  static constexpr uint8_t kNoLabel = 2;  // gt of a reading that carried no label (stored as NULL)
  static bool Labelled(uint8_t g) { return g != kNoLabel; }
  static bool Positive(uint8_t g) { return g == 1; }

  size_t size() const { return sensor.size(); }
  void Reserve(size_t n) {
    sensor.reserve(n);
    ts_us.reserve(n);
    value.reserve(n);
    gt.reserve(n);
    type.reserve(n);
    score.reserve(n);
    predicted.reserve(n);
    model.reserve(n);
  }
  void Clear() {
    sensor.clear();
    ts_us.clear();
    value.clear();
    gt.clear();
    type.clear();
    score.clear();
    predicted.clear();
    model.clear();
    origins.clear();
    asset.clear();
  }
  // g: 0/1 (or a bool), or kNoLabel.
  void Push(uint32_t s, int64_t t, double v, uint8_t g, uint16_t ty) {
    sensor.push_back(s);
    ts_us.push_back(t);
    value.push_back(v);
    gt.push_back(g);
    type.push_back(ty);
    score.push_back(0.f);
    predicted.push_back(0);
    model.push_back(0);
  }
};

// A record that could not be decoded: its bytes, why, and when.
struct DeadLetterBatch {
  std::vector<std::string> raw;
  std::vector<std::string> reason;
  std::vector<Origin> origins;
  int64_t received_ts_us = 0;
  size_t size() const { return raw.size(); }
  void Clear() {
    raw.clear();
    reason.clear();
    origins.clear();
  }
};

// What moves from the processor to the sinks.
// A sensor's metadata as its records declared it (issue 16: units and tags go to the `sensors` dataset,
// not to every row). The parser emits one when a sensor's unit or tags first appear or change.
struct SensorMeta {
  uint32_t sensor = 0;  // interned sensor id
  std::string unit;     // empty: none declared
  std::string tags;     // a JSON object's text, or empty
};

struct ProcessedBatch {
  ReadingBatch readings;
  DeadLetterBatch dead;
  int64_t sent = 0;
  int64_t source_mono_us = 0;  // when the source produced the raw batch (latency accounting)
  // Shadow scoring (Processor::SetShadow): empty, or one entry per reading.
  std::vector<float> shadow_score;
  std::vector<uint8_t> shadow_predicted;
  std::vector<uint16_t> shadow_model;   // model_version id of the shadow detector's result
  std::vector<SensorMeta> sensor_meta;  // units and tags first seen or changed in this batch
};

}  // namespace iotpipe
