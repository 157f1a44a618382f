// Helpers shared by the tests of the model format (model/), the LSTM detector (detect/lstm_test.cc)
// and the model lifecycle (lifecycle/): a temporary directory, small valid models. Test code only.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "model/model.h"
#include "model/train.h"

namespace iotpipe::ml::testutil {

struct Tmp {
  std::filesystem::path p;
  explicit Tmp(const std::string& tag) {
    p = std::filesystem::temp_directory_path() / ("iotpipe_ml_" + tag + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(p);
    std::filesystem::create_directories(p);
  }
  ~Tmp() { std::filesystem::remove_all(p); }
  std::string str() const { return p.string(); }
};

// A small valid model (random weights) for sensors sensor_0..sensor_{S-1}.
inline Model SmallModel(const std::string& version, int S = 3, uint64_t seed = 1, int W = 8, int H = 16) {
  Model m;
  m.version = version;
  m.weights = TorchInitWeights(W, H, seed);
  for (int i = 0; i < S; i++) {
    m.scaler.names.push_back("sensor_" + std::to_string(i));
    m.scaler.mean.push_back(10.0 * i);
    m.scaler.std.push_back(1.0 + i);
  }
  m.scaler.Reindex();
  std::vector<std::vector<float>> e(static_cast<size_t>(S), std::vector<float>{0.1f, 0.2f, 0.3f});
  m.thresholds = Calibrate(e, e, 0.5, 1.0, 1);
  m.config = {{"window", W}, {"hidden", H}};
  m.card = {{"version", version}, {"created", "2024-11-24T00:00:00Z"}};
  m.val_errors = {0.1f, 0.2f, 0.3f};
  m.val_last = {0.1f, 0.2f, 0.3f};
  return m;
}

constexpr int64_t kDayUs = 86400LL * 1000000;

// A seasonal scaler for sensor_0 and sensor_1 with `bins` time-of-day bins.
inline Scaler SeasonalScaler(int bins = 4) {
  Scaler s;
  s.names = {"sensor_0", "sensor_1"};
  s.mean = {10, 20};
  s.std = {2, 4};
  s.tod_bins = bins;
  for (int i = 0; i < 2; i++)
    for (int b = 0; b < bins; b++) s.profile.push_back(static_cast<float>(10 * (i + 1) + b));
  s.phi = {0.5, 0.8};
  s.Reindex();
  return s;
}

}  // namespace iotpipe::ml::testutil
