#include "ml/forward.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <thread>

namespace iotpipe::ml {

static std::vector<float> Transpose(const std::vector<float>& w, int rows, int cols) {
  std::vector<float> t(w.size());
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) t[static_cast<size_t>(c) * rows + r] = w[static_cast<size_t>(r) * cols + c];
  return t;
}

LstmAeForward::LstmAeForward(const LstmAeWeights& w)
    : T_(w.window), H_(w.hidden), G_(4 * w.hidden), out_b_(w.out_b) {
  enc_wih_ = w.enc_wih;
  enc_b_ = w.enc_b;
  dec_b_ = w.dec_b;
  out_w_ = w.out_w;
  enc_whhT_ = Transpose(w.enc_whh, G_, H_);
  dec_wihT_ = Transpose(w.dec_wih, G_, H_);
  dec_whhT_ = Transpose(w.dec_whh, G_, H_);
  __builtin_cpu_init();
  avx2_ = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && H_ % 16 == 0;
}

// ---------------------------------------------------------------------------------------------
// Scalar reference path (also the fallback).
static inline float Sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

void LstmAeForward::RunOneScalar(const float* x, float* r) const {
  const int H = H_, G = G_;
  std::vector<float> h(H, 0.f), c(H, 0.f), g(G), pre(G);
  auto cell = [&](const float* gates) {
    for (int j = 0; j < H; j++) {
      float i = Sigmoid(gates[j]), f = Sigmoid(gates[H + j]), gg = std::tanh(gates[2 * H + j]),
            o = Sigmoid(gates[3 * H + j]);
      c[j] = f * c[j] + i * gg;
      h[j] = o * std::tanh(c[j]);
    }
  };
  auto matvec = [&](const std::vector<float>& WT, const float* in, const float* base, float* out) {
    for (int q = 0; q < G; q++) out[q] = base[q];
    for (int k = 0; k < H; k++) {
      const float hk = in[k];
      const float* wr = WT.data() + static_cast<size_t>(k) * G;
      for (int q = 0; q < G; q++) out[q] += hk * wr[q];
    }
  };
  for (int t = 0; t < T_; t++) {
    for (int q = 0; q < G; q++) pre[q] = enc_b_[q] + x[t] * enc_wih_[q];
    matvec(enc_whhT_, h.data(), pre.data(), g.data());
    cell(g.data());
  }
  std::vector<float> z = h;
  matvec(dec_wihT_, z.data(), dec_b_.data(), pre.data());
  std::fill(h.begin(), h.end(), 0.f);
  std::fill(c.begin(), c.end(), 0.f);
  for (int t = 0; t < T_; t++) {
    matvec(dec_whhT_, h.data(), pre.data(), g.data());
    cell(g.data());
    float y = out_b_;
    for (int j = 0; j < H; j++) y += out_w_[j] * h[j];
    r[t] = y;
  }
}

// ---------------------------------------------------------------------------------------------
// AVX2 + FMA path, compiled for those instructions only in these functions (checked at run time).
#define IOTP_AVX2 __attribute__((target("avx2,fma")))

IOTP_AVX2 static inline __m256 Exp256(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.3762626647949f), lo = _mm256_set1_ps(-88.3762626647949f);
  x = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  __m256 x2 = _mm256_mul_ps(x, x);
  y = _mm256_fmadd_ps(y, x2, _mm256_add_ps(x, _mm256_set1_ps(1.f)));
  __m256i e = _mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127));
  e = _mm256_slli_epi32(e, 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

IOTP_AVX2 static inline __m256 Sigmoid256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, Exp256(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

IOTP_AVX2 static inline __m256 Tanh256(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f), two = _mm256_set1_ps(2.f);
  // tanh(x) = 1 - 2 / (exp(2x) + 1); for |x| < 0.01 use the odd Taylor series (keeps relative accuracy).
  __m256 e = Exp256(_mm256_add_ps(x, x));
  __m256 t = _mm256_sub_ps(one, _mm256_div_ps(two, _mm256_add_ps(e, one)));
  __m256 x2 = _mm256_mul_ps(x, x);
  __m256 series = _mm256_mul_ps(x, _mm256_fmadd_ps(x2, _mm256_set1_ps(-1.f / 3.f), one));
  __m256 small = _mm256_cmp_ps(_mm256_mul_ps(x, x), _mm256_set1_ps(1e-4f), _CMP_LT_OQ);
  return _mm256_blendv_ps(t, series, small);
}

// out_r[q] = base_r[q] + sum_k in_r[k] * WT[k][q] for two rows r, in blocks of 64 gates.
IOTP_AVX2 static inline void Gates2(const float* WT, int H, int G, const float* in0, const float* in1,
                                   const float* base0, const float* base1, float* out0, float* out1) {
  for (int gb = 0; gb < G; gb += 64) {
    __m256 a[8], b[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      a[j] = _mm256_loadu_ps(base0 + gb + 8 * j);
      b[j] = _mm256_loadu_ps(base1 + gb + 8 * j);
    }
    for (int k = 0; k < H; k++) {
      const __m256 x0 = _mm256_broadcast_ss(in0 + k), x1 = _mm256_broadcast_ss(in1 + k);
      const float* w = WT + static_cast<size_t>(k) * G + gb;
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++) {
        const __m256 wv = _mm256_loadu_ps(w + 8 * j);
        a[j] = _mm256_fmadd_ps(x0, wv, a[j]);
        b[j] = _mm256_fmadd_ps(x1, wv, b[j]);
      }
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      _mm256_storeu_ps(out0 + gb + 8 * j, a[j]);
      _mm256_storeu_ps(out1 + gb + 8 * j, b[j]);
    }
  }
}

IOTP_AVX2 static inline void Cell(const float* g, int H, float* c, float* h) {
  for (int j = 0; j < H; j += 8) {
    __m256 i = Sigmoid256(_mm256_loadu_ps(g + j));
    __m256 f = Sigmoid256(_mm256_loadu_ps(g + H + j));
    __m256 gg = Tanh256(_mm256_loadu_ps(g + 2 * H + j));
    __m256 o = Sigmoid256(_mm256_loadu_ps(g + 3 * H + j));
    __m256 cv = _mm256_fmadd_ps(f, _mm256_loadu_ps(c + j), _mm256_mul_ps(i, gg));
    _mm256_storeu_ps(c + j, cv);
    _mm256_storeu_ps(h + j, _mm256_mul_ps(o, Tanh256(cv)));
  }
}

IOTP_AVX2 void LstmAeForward::RunPairAvx2(const float* x0, const float* x1, float* r0, float* r1) const {
  const int H = H_, G = G_;
  alignas(32) float h0[256], h1[256], c0[256], c1[256];
  alignas(32) float g0[1024], g1[1024], p0[1024], p1[1024];
  std::fill(h0, h0 + H, 0.f);
  std::fill(h1, h1 + H, 0.f);
  std::fill(c0, c0 + H, 0.f);
  std::fill(c1, c1 + H, 0.f);
  const float* wih = enc_wih_.data();
  const float* eb = enc_b_.data();
  for (int t = 0; t < T_; t++) {
    const __m256 xa = _mm256_set1_ps(x0[t]), xb = _mm256_set1_ps(x1[t]);
    for (int q = 0; q < G; q += 8) {
      const __m256 w = _mm256_loadu_ps(wih + q), bb = _mm256_loadu_ps(eb + q);
      _mm256_store_ps(p0 + q, _mm256_fmadd_ps(xa, w, bb));
      _mm256_store_ps(p1 + q, _mm256_fmadd_ps(xb, w, bb));
    }
    Gates2(enc_whhT_.data(), H, G, h0, h1, p0, p1, g0, g1);
    Cell(g0, H, c0, h0);
    Cell(g1, H, c1, h1);
  }
  // Decoder: the input z (= last encoder h) is the same at every step, so z W_ih^T + b is computed once.
  Gates2(dec_wihT_.data(), H, G, h0, h1, dec_b_.data(), dec_b_.data(), p0, p1);
  std::fill(h0, h0 + H, 0.f);
  std::fill(h1, h1 + H, 0.f);
  std::fill(c0, c0 + H, 0.f);
  std::fill(c1, c1 + H, 0.f);
  for (int t = 0; t < T_; t++) {
    Gates2(dec_whhT_.data(), H, G, h0, h1, p0, p1, g0, g1);
    Cell(g0, H, c0, h0);
    Cell(g1, H, c1, h1);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (int j = 0; j < H; j += 8) {
      const __m256 w = _mm256_loadu_ps(out_w_.data() + j);
      s0 = _mm256_fmadd_ps(w, _mm256_load_ps(h0 + j), s0);
      s1 = _mm256_fmadd_ps(w, _mm256_load_ps(h1 + j), s1);
    }
    alignas(32) float t0[8], t1[8];
    _mm256_store_ps(t0, s0);
    _mm256_store_ps(t1, s1);
    float y0 = out_b_, y1 = out_b_;
    for (int j = 0; j < 8; j++) {
      y0 += t0[j];
      y1 += t1[j];
    }
    r0[t] = y0;
    r1[t] = y1;
  }
}

void LstmAeForward::RunRange(const float* x, size_t begin, size_t end, float* recon) const {
  const size_t T = static_cast<size_t>(T_);
  size_t i = begin;
  if (avx2_) {
    for (; i + 2 <= end; i += 2) RunPairAvx2(x + i * T, x + (i + 1) * T, recon + i * T, recon + (i + 1) * T);
    if (i < end) {  // odd one out: pair it with itself
      std::vector<float> scratch(T);
      RunPairAvx2(x + i * T, x + i * T, recon + i * T, scratch.data());
      i++;
    }
  }
  for (; i < end; i++) RunOneScalar(x + i * T, recon + i * T);
}

void LstmAeForward::Reconstruct(const float* x, size_t n, float* recon, int threads) const {
  threads = std::max(1, std::min<int>(threads, static_cast<int>(n / 64) + 1));
  if (threads == 1) return RunRange(x, 0, n, recon);
  std::vector<std::thread> th;
  size_t per = (n + threads - 1) / threads;
  per += per & 1;
  for (int k = 0; k < threads; k++) {
    size_t b = std::min(n, per * k), e = std::min(n, b + per);
    if (b < e) th.emplace_back([=, this] { RunRange(x, b, e, recon); });
  }
  for (auto& t : th) t.join();
}

void LstmAeForward::Errors(const float* x, size_t n, float* e_win, float* e_last, int threads) const {
  const size_t T = static_cast<size_t>(T_);
  std::vector<float> recon(n * T);
  Reconstruct(x, n, recon.data(), threads);
  for (size_t i = 0; i < n; i++) {
    const float* a = x + i * T;
    const float* r = recon.data() + i * T;
    float s = 0;
    for (size_t t = 0; t < T; t++) s += (a[t] - r[t]) * (a[t] - r[t]);
    e_win[i] = s / static_cast<float>(T);
    const float d = a[T - 1] - r[T - 1];
    e_last[i] = d * d;
  }
}

}  // namespace iotpipe::ml
