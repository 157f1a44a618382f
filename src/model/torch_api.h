// The boundary between the iotpipe binary and libiotpipe_torch.so, the only code that links LibTorch.
//
// LibTorch costs every process that maps it ~0.5-0.8 CPU-seconds at start-up (symbol resolution of
// libtorch_cpu and its operator registration), so it is not linked into the binary: model/train_torch.cc
// is built into libiotpipe_torch.so, and the functions of model/train.h that need it (FitWeights,
// TorchReconstruct, TorchInitWeightsReference) forward to it through LoadTorch(), which dlopens the
// library on first use. Everything else (reading data, scaling, inference, calibration) stays in the
// binary; `iotpipe run` with any detector never loads it.
//
// Both sides are built from the same tree by the same compiler, so C++ types cross the boundary; the
// table records the layout it was built with and LoadTorch() refuses a library that disagrees.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/status.h"
#include "model/train.h"

namespace iotpipe::ml {

// Bump when a signature in TorchApi or a type it passes changes.
inline constexpr int kTorchApiVersion = 1;

struct TorchApi {
  int version = kTorchApiVersion;
  size_t sizeof_api = sizeof(TorchApi);
  size_t sizeof_options = sizeof(TrainOptions);
  size_t sizeof_windows = sizeof(WindowSet);
  size_t sizeof_weights = sizeof(LstmAeWeights);
  Result<LstmAeWeights> (*fit_weights)(const WindowSet& train, const WindowSet& val, const TrainOptions& opt,
                                       int* epochs_run, double* best_val) = nullptr;
  std::vector<float> (*reconstruct)(const LstmAeWeights& w, const std::vector<float>& x, size_t n) = nullptr;
  LstmAeWeights (*init_weights)(int window, int hidden, uint64_t seed) = nullptr;
};

// The library's table, loaded on first call (thread-safe; the outcome, success or failure, is kept).
// Looks for libiotpipe_torch.so at $IOTPIPE_TORCH_LIB if set, else beside the executable
// (/proc/self/exe), else in ../lib from it (an installed prefix: make install).
// Error: "training needs libiotpipe_torch.so: <why>".
Result<const TorchApi*> LoadTorch();

}  // namespace iotpipe::ml

// The library's one exported symbol.
extern "C" const iotpipe::ml::TorchApi* iotpipe_torch_api();
