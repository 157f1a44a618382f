// Streaming per-sensor features of the LSTM-AE detector, on the seasonal residual z of a reading
// (z = (x - profile(time of day)) / residual sd, see Scaler in model/model.h). They give the model what a
// 32-reading window cannot see, and are computed identically in training (calibration over
// validation stretches) and in scoring (src/detect/lstm.cc), from a small POD state per sensor:
//   point  |innovation| = |z - phi * z_prev| / sqrt(1 - phi^2)      spikes, drops, onsets
//   level  |EWMA(z)| / its stationary sd for an AR(1) of lag-1 phi  level shift, drift, pattern break
//   var    EWMA(min(innovation^2, winsor^2))                        noise bursts (winsorised: one
//                                                                   spike does not raise it)
//   stuck  run length of identical raw readings                     stuck-at
// A point-channel outlier is not taken as the next prediction's base (z_prev keeps its prediction)
// for up to max_impute readings in a row, so one spike does not flag the reading after it.
// Rule 2 (models trained since 2026-11-27; rule 1 = older models, scored as before): such an imputed
// outlier also stays out of the level and var EWMAs, and the detector puts the imputed value (the
// AR(1) prediction, back in raw units) in the autoencoder's window ring instead of the spike, so one
// spike neither moves the long level (which would then be held by the hysteresis) nor keeps the
// window error high for the next `window` readings. FeatureState::imputed > 0 after UpdateFeatures
// says the reading was imputed and last_z is its imputed residual.
// Each channel is divided by its calibrated threshold (>= 1: anomalous). The contextual channels
// (level, var, stuck, and the autoencoder's window error) alarm with hysteresis: once on, the alarm
// holds while their severity stays >= `release` (one alarm per episode instead of a flicker of them).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/status.h"

namespace iotpipe::ml {

struct FeatureConfig {
  bool enabled = false;  // false: a model from before the features (no seasonal scaler)
  int rule = 2;          // 1: imputed outliers still enter level/var and the window (models before rule 2)
  double alpha_level = 1.0 / 200, alpha_var = 1.0 / 30, winsor = 4.0;
  int max_impute = 8;
  // Thresholds: max(floor, margin * quantile(q) of the channel over normal validation stretches).
  double thr_point = 5.5, thr_level = 5, thr_var = 3, thr_stuck = 8;
  double release = 0.6;
  nlohmann::json calibration = nlohmann::json::object();  // how the thresholds were chosen (model card)
  nlohmann::json ToJson() const;
  static Result<FeatureConfig> FromJson(const nlohmann::json& j);
};

struct FeatureState {
  double level, var, last_z, last_raw;
  uint32_t run, n, imputed;
  uint8_t alarm, pad[3];
};

struct FeatureChannels {
  double point = 0, level = 0, var = 0, stuck = 0;
};

void InitFeatureState(FeatureState& s);
// Stationary sd of EWMA(alpha) of a unit-variance AR(1) process with lag-1 correlation phi.
double EwmaSd(double alpha, double phi);
// Advances the state by one reading and returns the raw (unthresholded) channels.
FeatureChannels UpdateFeatures(const FeatureConfig& c, double phi, FeatureState& s, double z, double raw);
// Rule 2: true when the reading just given to UpdateFeatures was imputed (an outlier of the point
// channel); its imputed residual is then s.last_z.
inline bool WasImputed(const FeatureConfig& c, const FeatureState& s) { return c.rule >= 2 && s.imputed > 0; }

// Severities of one reading: point (spikes; no hold) and contextual (with hysteresis in s.alarm).
// ae_win / ae_last: the autoencoder's errors already divided by their thresholds (0 when no window).
// Returns the severity r (>= 1: anomalous); a held contextual alarm reports at least 1. `alarm` is the
// sensor's FeatureState::alarm (kept apart so the detector can update it after batched inference).
double CombineSeverity(const FeatureConfig& c, const FeatureChannels& ch, double ae_win, double ae_last,
                       uint8_t& alarm);

}  // namespace iotpipe::ml
