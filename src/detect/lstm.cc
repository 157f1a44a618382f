#include "detect/lstm.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "model/features.h"
#include "model/forward.h"
#include "model/model.h"

namespace iotpipe {

static uint32_t Fnv32(std::string_view s) {
  uint32_t h = 2166136261u;
  for (char c : s) h = (h ^ static_cast<uint8_t>(c)) * 16777619u;
  return h | 1u;  // never 0 (0 = unresolved)
}

Result<LstmMode> ParseLstmMode(std::string_view n) {
  if (n == "lstm") return LstmMode::kLstm;
  if (n == "auto") return LstmMode::kAuto;
  if (n == "ensemble") return LstmMode::kEnsemble;
  return Status::Error("not an LSTM detector mode: " + std::string(n));
}

LstmDetector::LstmDetector(std::shared_ptr<const ml::Model> model, LstmMode mode, int threads)
    : model_(std::move(model)), mode_(mode), threads_(std::max(1, threads)) {
  fwd_ = std::make_unique<ml::LstmAeForward>(model_->weights);
  W_ = model_->weights.window;
  feat_ = model_->thresholds.features.enabled && model_->scaler.seasonal();
  // Same name = same state layout: a promotion to a model with the same window keeps the windows.
  name_ = (feat_ ? "lstm-f-w" : "lstm-w") + std::to_string(W_);
  version_ = model_->DetectorVersion();
  tag_ = Fnv32(version_);
}

LstmDetector::~LstmDetector() = default;

Result<std::unique_ptr<LstmDetector>> LstmDetector::Load(const std::string& dir, LstmMode mode, int threads) {
  auto m = ml::Model::Load(dir);
  if (!m.ok()) return m.status();
  auto sp = std::make_shared<const ml::Model>(std::move(m.value()));
  return std::make_unique<LstmDetector>(sp, mode, threads);
}

size_t LstmDetector::state_bytes() const {
  return sizeof(Header) + sizeof(float) * static_cast<size_t>(W_) + sizeof(BaselineDetector::State) +
         (feat_ ? sizeof(ml::FeatureState) : 0);
}

void LstmDetector::Bind(const Interner* sensors, Interner* models) const {
  sensors_.store(sensors);
  if (models) {
    lstm_id_ = static_cast<uint16_t>(models->Intern(version_));
    base_id_ = static_cast<uint16_t>(models->Intern(baseline_.version()));
    bound_models_ = true;
  }
}

void LstmDetector::ScoreBatch(ReadingBatch& b, StateStore& store) const {
  const size_t n = b.size(), W = static_cast<size_t>(W_);
  const Interner* names = sensors_.load();
  const ml::Scaler& sc = model_->scaler;
  const ml::Thresholds& th = model_->thresholds;
  std::vector<float> X;
  std::vector<uint32_t> rows;
  std::vector<int32_t> sidx;
  std::vector<float> base_r;               // baseline severity of each queued row (ensemble)
  std::vector<ml::FeatureChannels> chans;  // feature channels of each queued row (feature models)
  const ml::FeatureConfig& fc = th.features;
  const size_t feat_off = sizeof(Header) + sizeof(float) * W + sizeof(BaselineDetector::State);
  const size_t alarm_off = feat_off + offsetof(ml::FeatureState, alarm);
  X.reserve(std::min(n, kMaxBatch) * W);
  auto flush = [&] {
    if (rows.empty()) return;
    std::vector<float> ew(rows.size()), el(rows.size());
    fwd_->Errors(X.data(), rows.size(), ew.data(), el.data(), threads_);
    for (size_t k = 0; k < rows.size(); k++) {
      const size_t s = static_cast<size_t>(sidx[k]);
      double r = std::max(ew[k] / th.win[s], el[k] / th.last[s]);
      if (feat_) {  // rows of a sensor are flushed in order, so the hysteresis sees them in order
        bool fr;
        std::byte* alarm = store.Get(b.sensor[rows[k]], &fr) + alarm_off;
        uint8_t a;
        std::memcpy(&a, alarm, 1);
        r = ml::CombineSeverity(fc, chans[k], ew[k] / th.win[s], el[k] / th.last[s], a);
        std::memcpy(alarm, &a, 1);
      }
      if (mode_ == LstmMode::kEnsemble) r = std::max<double>(r, base_r[k]);
      b.score[rows[k]] = SeverityToScore(r);
      b.predicted[rows[k]] = r >= 1.0;
    }
    X.clear();
    rows.clear();
    sidx.clear();
    base_r.clear();
    chans.clear();
  };
  for (size_t i = 0; i < n; i++) {
    bool fresh;
    std::byte* st = store.Get(b.sensor[i], &fresh);
    Header h;
    std::memcpy(&h, st, sizeof h);
    std::byte* ring_bytes = st + sizeof(Header);
    std::byte* base_st = ring_bytes + sizeof(float) * W;
    if (fresh) {
      h = Header{0, -1, 0, 0};
      std::memset(ring_bytes, 0, sizeof(float) * W);
      baseline_.InitState(base_st);
      if (feat_) {
        ml::FeatureState fs;
        ml::InitFeatureState(fs);
        std::memcpy(st + feat_off, &fs, sizeof fs);
      }
    }
    if (h.model_tag != tag_) {
      h.scaler = names && b.sensor[i] < names->size() ? sc.Find(names->Name(b.sensor[i])) : -1;
      h.model_tag = tag_;
    }
    float ring[1024];
    std::memcpy(ring, ring_bytes, sizeof(float) * W);
    const double rb = baseline_.Update(base_st, b.ts_us[i], b.value[i]);
    ml::FeatureChannels ch;
    ml::FeatureState fs;
    float stored = static_cast<float>(b.value[i]);
    const bool use_feat = feat_ && h.scaler >= 0;
    if (use_feat) {
      const size_t s = static_cast<size_t>(h.scaler);
      std::memcpy(&fs, st + feat_off, sizeof fs);
      ch = ml::UpdateFeatures(fc, sc.Phi(s), fs, sc.Z(s, b.ts_us[i], b.value[i]), b.value[i]);
      // Rule 2: the window sees the imputed value of a point outlier, not the outlier (model/features.h).
      if (ml::WasImputed(fc, fs)) stored = static_cast<float>(sc.Expected(s, b.ts_us[i]) + sc.std[s] * fs.last_z);
    }
    ring[h.head] = stored;
    std::memcpy(ring_bytes + sizeof(float) * h.head, &stored, sizeof(float));
    h.head = (h.head + 1) % static_cast<uint32_t>(W);
    if (h.count < UINT32_MAX) h.count++;
    std::memcpy(st, &h, sizeof h);
    if (use_feat) {
      if (h.count < W) {  // no full window yet: the feature channels alone
        double r = ml::CombineSeverity(fc, ch, 0, 0, fs.alarm);
        if (mode_ == LstmMode::kEnsemble) r = std::max(r, rb);
        b.score[i] = SeverityToScore(r);
        b.predicted[i] = r >= 1.0;
        if (bound_models_) b.model[i] = lstm_id_;
      }
      std::memcpy(st + feat_off, &fs, sizeof fs);
      if (h.count < W) continue;
    }
    if (h.count >= W && h.scaler >= 0) {
      // Seasonal models: the window's residuals from the expected value at its newest reading (the
      // profile moves by < 0.01 sd over a window, so one expected value serves the whole window).
      const double mean = sc.Expected(static_cast<size_t>(h.scaler), b.ts_us[i]);
      const double inv = 1.0 / sc.std[static_cast<size_t>(h.scaler)];
      for (size_t t = 0; t < W; t++)  // oldest (at head) to newest
        X.push_back(static_cast<float>((ring[(h.head + t) % W] - mean) * inv));
      rows.push_back(static_cast<uint32_t>(i));
      sidx.push_back(h.scaler);
      base_r.push_back(static_cast<float>(rb));
      if (feat_) chans.push_back(ch);
      if (bound_models_) b.model[i] = lstm_id_;
      if (rows.size() >= kMaxBatch) flush();
    } else if (mode_ != LstmMode::kLstm) {
      b.score[i] = SeverityToScore(rb);
      b.predicted[i] = rb >= 1.0;
      if (bound_models_) b.model[i] = base_id_;
    } else {
      b.score[i] = 0;
      b.predicted[i] = 0;
    }
  }
  flush();
}

}  // namespace iotpipe
