// The LSTM autoencoder's forward pass in plain C++ (no LibTorch): weights repacked transposed so the
// gate pre-activations of two windows at a time are 16 AVX2 FMA accumulators; sigmoid/tanh through a
// vectorised Cephes exp. A scalar path is used on CPUs without AVX2/FMA. Matches LibTorch within
// 1e-5 (tested in forward_test.cc). Thread-safe: const after construction.
#pragma once
#include <cstddef>
#include <vector>

#include "ml/model.h"

namespace iotpipe::ml {

class LstmAeForward {
 public:
  explicit LstmAeForward(const LstmAeWeights& w);
  int window() const { return T_; }
  int hidden() const { return H_; }
  bool vectorized() const { return avx2_; }
  // x: n windows of window() scaled values each (row-major); recon: n * window() outputs.
  void Reconstruct(const float* x, size_t n, float* recon, int threads = 1) const;
  // Per window: e_win = mean squared reconstruction error, e_last = squared error of the last value.
  void Errors(const float* x, size_t n, float* e_win, float* e_last, int threads = 1) const;
  // Forces the scalar path (tests compare both).
  void DisableSimd() { avx2_ = false; }

 private:
  void RunRange(const float* x, size_t begin, size_t end, float* recon) const;
  void RunPairAvx2(const float* x0, const float* x1, float* r0, float* r1) const;
  void RunOneScalar(const float* x, float* r) const;

  int T_, H_, G_;
  bool avx2_;
  std::vector<float> enc_wih_, enc_b_, dec_b_, out_w_;
  std::vector<float> enc_whhT_, dec_wihT_, dec_whhT_;  // H x 4H (transposed)
  float out_b_;
};

}  // namespace iotpipe::ml
