// Decoding and validation of wire records (simdjson On Demand). Every record ends as a reading or a
// dead letter with a reason; nothing is dropped.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/batch.h"
#include "core/clock.h"
#include "core/interner.h"
#include "core/status.h"

namespace iotpipe {

struct MappedReading;

struct InputMapping;
class MappedDecoder;

// Why a record was rejected. The stored reason is "<name>: <detail>".
enum class Reject : uint8_t {
  kNone = 0,
  kEmpty,
  kOversize,
  kInvalidJson,
  kNotAnObject,
  kMissingField,
  kWrongType,
  kNonFiniteValue,
  kValueOutOfRange,
  kTimestampOutOfRange,
  kInvalidSensorId,
  kTooManySensors,
  kInvalidAssetId,
  kMalformed,  // line protocol / CSV syntax (JSON syntax is kInvalidJson)
  kCount
};
std::string_view RejectName(Reject r);

struct ParserOptions {
  size_t max_record_bytes = 64 * 1024;
  double max_abs_value = 1e15;
  double min_timestamp_s = 0;             // 1970-01-01
  double max_timestamp_s = 4102444800.0;  // 2100-01-01
  size_t max_sensor_id_bytes = 128;
  bool known_layout = true;  // the one-scan fast path (parse/known_layout.h) before simdjson
  size_t max_asset_id_bytes = 128;
};

struct ParsedRecord {
  std::string_view sensor_id;  // valid until the next parse
  double timestamp = 0;        // epoch seconds
  double value = 0;
  bool gt = false;
  bool has_gt = false;            // false: no label (or null): an unlabelled reading
  std::string_view anomaly_type;  // empty if absent or null
  std::string_view asset_id;      // optional multivariate grouping (empty if absent or null)
};

class Parser {
 public:
  // Bytes of an oversize record kept in its dead letter (with its whole length in the reason).
  static constexpr size_t kKeptOfOversize = 1024;
  Parser(Interner* sensors, Interner* types, ParserOptions opt = {});
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // Decodes every record of raw: readings are appended to out.readings, rejects to out.dead.
  // raw must be Seal()ed (padding after its buffer).
  void Parse(const RawBatch& raw, ProcessedBatch& out);

  // One record. `rec` must be followed by at least 64 readable bytes (RawBatch guarantees it),
  // or use ParseCopy. On failure returns the reason and fills *detail.
  Reject ParseOne(std::string_view rec, ParsedRecord* out, std::string* detail);
  Reject ParseCopy(std::string_view rec, ParsedRecord* out, std::string* detail);

  uint64_t rejected(Reject r) const { return rejected_[static_cast<int>(r)]; }
  // Records of another shape than the original wire record (parse/mapping.h): decoded through the
  // mapping, one reading per quantity. The original format (the default) keeps the fast path.
  // InvalidArgument if the mapping does not resolve.
  Status SetMapping(const InputMapping& m);
  bool mapped() const { return mapped_ != nullptr; }
  // The clock of time = "arrival" (tests pass a manual one).
  void SetClock(Clock* c) { clock_ = c; }
  // Records that yielded no reading and no rejection (a CSV header), and readings beyond the first
  // of multi-field records: sent == readings - expanded + skipped + dead letters.
  uint64_t skipped() const { return skipped_; }
  uint64_t expanded() const { return expanded_; }

  // Where wire `asset_id` values are interned (ReadingBatch::asset); null: the field is validated only.
  void SetAssets(Interner* assets) { assets_ = assets; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  Interner* sensors_;
  Interner* types_;
  Interner* assets_ = nullptr;
  ParserOptions opt_;
  uint64_t rejected_[static_cast<int>(Reject::kCount)] = {};
  std::string copy_;
  std::unique_ptr<MappedDecoder> mapped_;
  uint64_t skipped_ = 0, expanded_ = 0;
  std::vector<uint32_t> sids_, aids_;
  std::vector<uint64_t> meta_hash_;  // by sensor: the unit and tags last sent out (0: none)
  void NoteMeta(uint32_t sid, const MappedReading& r, ProcessedBatch& out);
  static bool IsCut(const RawBatch& raw, size_t i, size_t* next);
  void DeadLetter(const RawBatch& raw, size_t i, Reject r, const std::string& detail, ProcessedBatch& out);
  Clock* clock_ = RealClock::Get();
  void ParseMapped(const RawBatch& raw, ProcessedBatch& out);
};

}  // namespace iotpipe
