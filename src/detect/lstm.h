// The LSTM-autoencoder detector: each sensor's last `window` raw readings live in the state store
// (a ring of floats, plain bytes, so checkpoints and hot swaps keep them) together with a baseline
// state for cold start. Full windows are scaled with the model's scaler and batched across sensors
// (up to kMaxBatch windows per forward pass) within ScoreBatch.
//   mode lstm:     rows without a full window, or of sensors unknown to the scaler, get score 0;
//   mode auto:     those rows are scored by the baseline instead (model_version says which);
//   mode ensemble: severity = max(lstm, baseline) where both exist (model_version: the LSTM's).
// Models with a seasonal scaler (tod_bins > 0) score each window on seasonal residuals and add the
// streaming feature channels of model/features.h (point, level, var, stuck) to the autoencoder's two
// errors; their sensors are scored by the model from the first reading (features only until the window
// is full), and the contextual alarm has hysteresis. Their state layout differs (name lstm-f-w<W>).
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "detect/baseline.h"
#include "detect/detector.h"

namespace iotpipe {
namespace ml {
struct Model;
class LstmAeForward;
}  // namespace ml

enum class LstmMode { kLstm, kAuto, kEnsemble };

class LstmDetector final : public Detector {
 public:
  static constexpr size_t kMaxBatch = 1024;
  struct Header {
    uint32_t model_tag;  // hash of the version that resolved `scaler`
    int32_t scaler;      // index in the model's scaler, -1 unknown
    uint32_t count;      // readings seen (saturating)
    uint32_t head;       // next ring slot
  };

  LstmDetector(std::shared_ptr<const ml::Model> model, LstmMode mode, int threads = 1);
  ~LstmDetector() override;
  // Loads and validates models_dir/<version> (a corrupt model is an error, never a crash).
  static Result<std::unique_ptr<LstmDetector>> Load(const std::string& dir, LstmMode mode, int threads = 1);

  std::string_view name() const override { return name_; }
  std::string_view version() const override { return version_; }
  size_t state_bytes() const override;
  void ScoreBatch(ReadingBatch& batch, StateStore& store) const override;
  void Bind(const Interner* sensors, Interner* models) const override;
  const ml::Model& model() const { return *model_; }

 private:
  std::shared_ptr<const ml::Model> model_;
  std::unique_ptr<ml::LstmAeForward> fwd_;
  LstmMode mode_;
  int threads_;
  int W_;
  bool feat_;  // seasonal scaler + feature channels (model/features.h): a FeatureState follows the baseline's
  std::string name_, version_;
  uint32_t tag_;
  BaselineDetector baseline_;
  mutable std::atomic<const Interner*> sensors_{nullptr};
  mutable uint16_t lstm_id_ = 0, base_id_ = 0;
  mutable bool bound_models_ = false;
};

Result<LstmMode> ParseLstmMode(std::string_view detector_name);

}  // namespace iotpipe
