// The LSTM autoencoder as data: weights, per-sensor scaler, calibrated thresholds and the model card,
// with a versioned on-disk layout (models/<version>/) validated by checksums and shapes on load.
// No LibTorch here: training lives in model/train.cc; inference is the plain C++ forward pass in
// model/forward.h, so every other file compiles fast.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "model/features.h"

namespace iotpipe::ml {

// Encoder LSTM(1 -> H) over the window; its last hidden state z is fed at every step to a decoder
// LSTM(H -> H) whose outputs go through Linear(H -> 1) to reconstruct the window.
// Gate order i, f, g, o (PyTorch's); biases are b_ih + b_hh folded together.
struct LstmAeWeights {
  int window = 32;
  int hidden = 32;
  std::vector<float> enc_wih;  // 4H x 1
  std::vector<float> enc_whh;  // 4H x H (row-major, PyTorch layout)
  std::vector<float> enc_b;    // 4H
  std::vector<float> dec_wih;  // 4H x H
  std::vector<float> dec_whh;  // 4H x H
  std::vector<float> dec_b;    // 4H
  std::vector<float> out_w;    // H
  float out_b = 0;

  void Resize();  // shapes from window/hidden, zero-filled
  Status Validate() const;
  size_t NumParams() const;
  // Multiply-adds of one window's forward pass x 2 (FLOPs, ignoring the nonlinearities).
  double FlopsPerWindow() const;
  std::string Serialize() const;  // "IOTPLSTM" binary, little-endian float32
  static Result<LstmAeWeights> Deserialize(const std::string& bytes);
};

// Per-sensor standardisation; part of the model (a window is scaled with its sensor's mean/std).
struct Scaler {
  std::vector<std::string> names;
  std::vector<double> mean, std;
  std::unordered_map<std::string, int32_t> index;  // built by Reindex()
  void Reindex();
  int32_t Find(const std::string& name) const {
    auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
  }
  size_t size() const { return names.size(); }
  // Seasonal scaler (models trained with --tod-bins > 0; empty for older ones): profile[s * tod_bins + b]
  // is sensor s's mean in time-of-day bin b (UTC, width 86400 / tod_bins s) over the normal training
  // rows; std[s] is then the sd of the residual x - profile and phi[s] its lag-1 autocorrelation.
  int tod_bins = 0;
  std::vector<float> profile;
  std::vector<double> phi;
  bool seasonal() const { return tod_bins > 0; }
  // Expected value at ts_us: linear interpolation between bin centres (circular); mean[s] if not seasonal.
  double Expected(size_t s, int64_t ts_us) const;
  double Z(size_t s, int64_t ts_us, double v) const { return (v - Expected(s, ts_us)) / std[s]; }
  double Phi(size_t s) const { return s < phi.size() ? phi[s] : 0.0; }
  // std is floored so that a constant sensor does not divide by zero.
  static double FloorStd(double sd, double mean);
  nlohmann::json ToJson() const;
  static Result<Scaler> FromJson(const nlohmann::json& j);
};

// Thresholds on two reconstruction errors of a window (scaled units):
//   e_win  = mean over the window of (x - x_hat)^2   (contextual: shape, noise, stuckness)
//   e_last = (x_T - x_hat_T)^2 of the newest point   (point anomalies, without smearing them over
//                                                      the 32 windows that contain them)
// Calibration rule (documented in the model card): threshold = margin * quantile_q of the validation
// errors of normal data; per sensor when the sensor has at least min_windows validation windows,
// else the global one. Severity r = max(e_win / thr_win, e_last / thr_last); score = r / (1 + r),
// so 0.5 is the threshold exactly as for the baseline.
struct Thresholds {
  double quantile = 0.9995;
  double margin = 1.5;
  int min_windows = 200;
  float global_win = 1, global_last = 1;
  std::vector<float> win, last;  // per scaler index
  FeatureConfig features;        // streaming feature channels (model/features.h); disabled for old models
  nlohmann::json ToJson() const;
  static Result<Thresholds> FromJson(const nlohmann::json& j);
};

// q-quantile (0..1) with linear interpolation; v is reordered. Empty -> 0.
double Quantile(std::vector<float>& v, double q);
// Calibrates thresholds from validation errors grouped by scaler index.
Thresholds Calibrate(const std::vector<std::vector<float>>& val_win, const std::vector<std::vector<float>>& val_last,
                     double quantile, double margin, int min_windows);

struct Model {
  std::string version;  // directory name, e.g. v3
  LstmAeWeights weights;
  Scaler scaler;
  Thresholds thresholds;
  nlohmann::json config;          // training configuration
  nlohmann::json card;            // model card
  std::vector<float> val_errors;  // sample of validation e_win (for drift monitoring), sorted
  std::vector<float> val_last;    // sample of validation e_last, sorted

  // Writes models_dir/<version>/ atomically (hidden temp dir, fsync, rename) with checksums.json.
  Status Save(const std::string& models_dir) const;
  // Loads and validates (checksums, shapes, thresholds aligned with the scaler).
  static Result<Model> Load(const std::string& dir);
  std::string DetectorVersion() const { return "lstm-ae-" + version; }
};

std::string Sha256Hex(std::string_view data);

}  // namespace iotpipe::ml
