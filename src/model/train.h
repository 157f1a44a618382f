// Training an LSTM autoencoder from stored readings (LibTorch is confined to train_torch.cc, built
// into libiotpipe_torch.so and loaded only by processes that train: see model/torch_api.h).
//
// Data: readings in [from, to) are read through DuckDB (view sensor_readings). The scaler (per-sensor
// mean/std) uses every normal row of the first 80 % of the span (the training part); the last 20 % is
// validation, so the split is by time. Windows are `window` consecutive readings of one sensor.
// Subsampling (so a week of 1,000 sensors trains in minutes on 2 cores): the span is cut into
// `segments` equal slices, one random stretch of 4 windows' length is read in each slice for all
// sensors, and from each stretch `windows_per_stretch` windows are taken at random offsets; the
// total is capped at max_windows. Validation reads `val_segments` stretches and takes every 4th window.
// Windows that contain a row labelled anomalous are dropped unless keep_anomalies.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/model.h"

namespace iotpipe::ml {

struct TrainOptions {
  std::string data_dir = "data";
  std::string model_dir = "models";
  int64_t from_us = 0, to_us = 0;  // span; to_us == 0: derived from `since_us` and the newest row
  int64_t since_us = 7LL * 86400 * 1000000;
  int window = 32;
  int hidden = 32;
  int epochs = 15;
  int patience = 3;
  int batch = 256;
  double lr = 3e-3;
  uint64_t seed = 1;
  int threads = 2;  // DuckDB reading and calibration
  // LibTorch intra-op threads. 1 by default: a profile of training (perf record) showed 66 % of the
  // time in libgomp barrier spinning with 2 threads on a loaded 2-core machine and 24 % in sgemm_
  // (Debian's reference BLAS); one thread removes the spinning and trains several times faster.
  int torch_threads = 1;
  size_t max_windows = 12000;
  int segments = 96, val_segments = 32;
  bool keep_anomalies = false;
  // Tuned on the realistic profile (README): 1.5 x q99.95 gave 12.75 false alarms per sensor-day.
  double quantile = 0.9999, margin = 3.0;
  int min_windows = 200;
  // Seasonal scaler: time-of-day bins of the per-sensor profile (0: plain mean/std scaler and no
  // feature channels, the behaviour of models before it). See Scaler and model/features.h.
  int tod_bins = 96;
  // A previous model (directory) whose seasonal profile completes this one: time-of-day bins the
  // span does not cover (a retraining on hours of data) take the previous profile mapped through a
  // per-sensor affine fit (new = a + c * old) over the bins it does cover; see README "ML lifecycle".
  std::string profile_from;
  // Copy the training span into memory first (one query, retried) and train from the copy: for a
  // retraining inside a running pipeline, whose store compacts closed hours (replacing their files)
  // while training reads. Memory: the span's rows (about 60 bytes each).
  bool snapshot = false;
  // Feature-channel thresholds: max(floor, feature_margin * quantile(feature_quantile)) of each channel
  // over `cal_segments` contiguous stretches of `cal_stretch_s` seconds of the validation span (all
  // sensors), skipping the first 600 readings of a stretch and readings within 1,000 of a labelled one.
  double feature_quantile = 0.9999, feature_margin = 1.2;
  int cal_segments = 8;
  int64_t cal_stretch_s = 3600;
  bool progress = true;
  std::string version;  // empty: next free vN
};

struct TrainReport {
  std::string version, dir;
  size_t train_windows = 0, val_windows = 0, sensors = 0;
  int64_t rows = 0;
  int epochs_run = 0;
  double best_val_loss = 0, seconds = 0;
};

// Windows in memory: n x window scaled floats, with their scaler index and whether the window holds
// a labelled anomaly.
struct WindowSet {
  int window = 0;
  std::vector<float> x;
  std::vector<int32_t> sensor;
  size_t size() const { return sensor.size(); }
};

// Slides windows over one sensor's consecutive values (already scaled): windows start every `stride`.
void MakeWindows(const std::vector<float>& values, int window, int stride, int32_t sensor, WindowSet& out);

Result<TrainReport> Train(const TrainOptions& opt);

// Completes a seasonal profile from a previous model's (TrainOptions::profile_from): for each sensor
// of `sc` known to `prev` (same tod_bins), the bins not marked in `covered` (sensor-major, like
// profile) become a + c * prev's bin, a and c fitted by least squares over the covered bins.
void CompleteProfile(const Scaler& prev, const std::vector<uint8_t>& covered, Scaler& sc);

// Trains on windows already in memory (used by Train and by tests). Deterministic for opt.seed.
// LibTorch runs in libiotpipe_torch.so, loaded on first use (model/torch_api.h); so does Train, which
// fails with "training needs libiotpipe_torch.so: ..." before reading any data when it is missing.
Result<LstmAeWeights> FitWeights(const WindowSet& train, const WindowSet& val, const TrainOptions& opt,
                                 int* epochs_run = nullptr, double* best_val = nullptr);

// LibTorch reference forward pass (for the equivalence test): n windows -> n x window reconstructions;
// empty if libiotpipe_torch.so cannot be loaded.
std::vector<float> TorchReconstruct(const LstmAeWeights& w, const std::vector<float>& x, size_t n);
// Random weights as PyTorch would initialise them, for a seed: computed here without LibTorch, equal
// value for value to LibTorch's (TorchInitWeightsReference, which loads it; window = hidden = 0 if
// the library cannot be loaded).
LstmAeWeights TorchInitWeights(int window, int hidden, uint64_t seed);
LstmAeWeights TorchInitWeightsReference(int window, int hidden, uint64_t seed);

// Next free version name in a model directory: v1, v2, ...
std::string NextVersion(const std::string& model_dir);

}  // namespace iotpipe::ml
