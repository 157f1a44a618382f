// Detectors: const logic + configuration. Per-sensor state lives in a StateStore the detector is
// handed (DuckDB's operator/state split), which makes checkpoints and hot swaps simple.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/batch.h"
#include "core/interner.h"
#include "core/status.h"

namespace iotpipe {

// Severity r >= 0 where r >= 1 means anomalous; every detector maps it to a score in [0, 1] the same
// way, so scores from different detectors compare: score = r / (1 + r), 0.5 at the threshold.
inline float SeverityToScore(double r) { return r <= 0 ? 0.f : static_cast<float>(r / (1.0 + r)); }
constexpr float kScoreThreshold = 0.5f;

// Fixed-size per-sensor state, contiguous: state i is bytes [i*stride, (i+1)*stride).
class StateStore {
 public:
  StateStore() = default;
  explicit StateStore(size_t stride) : stride_(stride) {}
  size_t stride() const { return stride_; }
  size_t size() const { return init_.size(); }
  // State of sensor id, growing the store as new sensors appear; *fresh is true the first time.
  std::byte* Get(uint32_t id, bool* fresh) {
    if (id >= init_.size()) {
      size_t n = std::max<size_t>(id + 1, init_.size() * 3 / 2);
      init_.resize(n, 0);
      bytes_.resize(n * stride_);
    }
    *fresh = !init_[id];
    init_[id] = 1;
    return bytes_.data() + id * stride_;
  }
  bool Has(uint32_t id) const { return id < init_.size() && init_[id]; }
  const std::byte* Peek(uint32_t id) const { return bytes_.data() + id * stride_; }
  std::vector<std::byte>& bytes() { return bytes_; }
  std::vector<uint8_t>& initialized() { return init_; }
  size_t MemoryBytes() const { return bytes_.capacity() + init_.capacity(); }

 private:
  size_t stride_ = 0;
  std::vector<std::byte> bytes_;
  std::vector<uint8_t> init_;
};

// Configured per-sensor value ranges (sensor name -> [lo, hi]) of detectors that scale values into
// a range (artime, cadose); sensors without one use the detector's own fixed or learnt range.
class SensorRanges {
 public:
  using Map = std::map<std::string, std::pair<double, double>>;
  void Set(Map ranges) { ranges_ = std::move(ranges); }
  void Bind(const Interner* sensors) const { sensors_ = sensors; }
  // The range configured for interned sensor `id`, or nullptr.
  const std::pair<double, double>* Find(uint32_t id) const {
    if (!sensors_ || ranges_.empty() || id >= sensors_->size()) return nullptr;
    auto it = ranges_.find(sensors_->Name(id));
    return it == ranges_.end() ? nullptr : &it->second;
  }

 private:
  Map ranges_;
  mutable const Interner* sensors_ = nullptr;
};

class Detector {
 public:
  virtual ~Detector() = default;
  virtual std::string_view name() const = 0;
  // Stored in model_version: which logic and parameters scored a row.
  virtual std::string_view version() const = 0;
  virtual size_t state_bytes() const = 0;
  // Scores rows [0, batch.size()) in order, updating their sensors' state; writes score and predicted.
  virtual void ScoreBatch(ReadingBatch& batch, StateStore& store) const = 0;
  // Called by the processor, on its thread, before this detector scores its first batch there: the
  // pipeline's sensor names (for detectors with per-sensor parameters, e.g. a model's scaler) and its
  // model-version table (for detectors that record a different model_version per row). The processor
  // fills batch.model with version() before ScoreBatch; a detector may overwrite it per row.
  virtual void Bind(const Interner* sensors, Interner* models) const {}
};

// A detector that scores one point at a time from its sensor's state alone.
class PointDetector : public Detector {
 public:
  virtual void InitState(std::byte* st) const = 0;
  // Returns the severity (>= 1: anomalous).
  virtual double Update(std::byte* st, int64_t ts_us, double value) const = 0;
  void ScoreBatch(ReadingBatch& batch, StateStore& store) const override;
};

// Registry of detectors by name (baseline, and those the eval/ML issues add).
std::vector<std::string> DetectorNames();
Result<std::unique_ptr<Detector>> MakeDetector(std::string_view name);

// Where model-based detectors (lstm, auto, ensemble) find their model.
struct DetectorOptions {
  std::string model_dir = "models";
  std::string model = "production";  // a version (v3) or an alias (production, shadow)
  int threads = 1;                   // inference threads
};
Result<std::unique_ptr<Detector>> MakeDetector(std::string_view name, const DetectorOptions& opt);

}  // namespace iotpipe
