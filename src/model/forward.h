// The LSTM autoencoder's forward pass in plain C++ (no LibTorch).
//
// AVX2 path: windows are processed in blocks of 8 x NV (NV = 3 -> 24) with the batch in the vector lanes.
// Weights are packed at load as [unit j][input k][gate i,f,g,o], so one register-blocked micro-kernel
// holds the four gate pre-activations of hidden unit j for 24 windows in 12 ymm accumulators
// (4 broadcast weights x 3 loaded h vectors = 12 FMAs per k). After the GEMMs of all units of a step,
// one loop applies the cell to all of them. Sigmoid is 0.5 + 0.5 tanh(x / 2) with the 1/2 folded into
// the packed i, f, o weights (exact), and tanh is a fitted [7/6] rational P/Q (error 1.1e-6) whose
// fractions the cell multiplies out, dividing twice per unit instead of five times.
// A scalar path is used on CPUs without AVX2/FMA.
// Each lane does exactly the same operations, so a window's result does not depend on the batch,
// its position in it, or the number of threads. Matches LibTorch within 1e-5 (ml_test.cc).
// Thread-safe: const after construction; scratch buffers are thread-local (no allocation per call
// once warm); threads > 1 uses a process-wide persistent worker pool (no thread creation per call).
#pragma once
#include <cstddef>
#include <vector>

#include "model/model.h"

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

  static constexpr int kLanes = 8;   // windows per ymm
  static constexpr int kBlock = 24;  // windows per micro-kernel block (3 ymm)

 private:
  // Windows [begin, end): recon (if not null) and/or errors (if e_win not null).
  void RunRange(const float* x, size_t begin, size_t end, float* recon, float* e_win, float* e_last) const;
  template <int NV>
  void RunBlockAvx2(const float* x, size_t n, float* recon, float* e_win, float* e_last, float* scratch) const;
  void RunOneScalar(const float* x, float* r) const;
  void Run(const float* x, size_t n, float* recon, float* e_win, float* e_last, int threads) const;

  int T_, H_, G_;
  bool avx2_;
  std::vector<float> enc_wih_, enc_b_, dec_b_, out_w_;
  std::vector<float> enc_whhT_, dec_wihT_, dec_whhT_;  // H x 4H (transposed), scalar path
  // AVX2 path, packed: *_p[j][k][4] (gate order i, f, g, o; i, f, o pre-scaled by 1/2),
  // enc_ih_p[j][4], enc_b_p[j][4], dec_b_p[j][4].
  std::vector<float> enc_hh_p_, dec_hh_p_, dec_ih_p_, enc_ih_p_, enc_b_p_, dec_b_p_;
  float out_b_;
};

}  // namespace iotpipe::ml
