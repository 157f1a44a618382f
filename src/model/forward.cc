#include "model/forward.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace iotpipe::ml {

static std::vector<float> Transpose(const std::vector<float>& w, int rows, int cols) {
  std::vector<float> t(w.size());
  for (int r = 0; r < rows; r++)
    for (int c = 0; c < cols; c++) t[static_cast<size_t>(c) * rows + r] = w[static_cast<size_t>(r) * cols + c];
  return t;
}

// [4H x K] (PyTorch gate-major rows) -> [j][k][gate], gates i, f, o scaled by 1/2 (sigmoid via tanh).
static const float kGateScale[4] = {0.5f, 0.5f, 1.f, 0.5f};
static std::vector<float> PackGates(const std::vector<float>& w, int H, int K) {
  std::vector<float> p(static_cast<size_t>(H) * K * 4);
  for (int j = 0; j < H; j++)
    for (int k = 0; k < K; k++)
      for (int g = 0; g < 4; g++)
        p[(static_cast<size_t>(j) * K + k) * 4 + g] = w[static_cast<size_t>(g * H + j) * K + k] * kGateScale[g];
  return p;
}

LstmAeForward::LstmAeForward(const LstmAeWeights& w) : T_(w.window), H_(w.hidden), G_(4 * w.hidden), out_b_(w.out_b) {
  enc_wih_ = w.enc_wih;
  enc_b_ = w.enc_b;
  dec_b_ = w.dec_b;
  out_w_ = w.out_w;
  enc_whhT_ = Transpose(w.enc_whh, G_, H_);
  dec_wihT_ = Transpose(w.dec_wih, G_, H_);
  dec_whhT_ = Transpose(w.dec_whh, G_, H_);
  enc_hh_p_ = PackGates(w.enc_whh, H_, H_);
  dec_hh_p_ = PackGates(w.dec_whh, H_, H_);
  dec_ih_p_ = PackGates(w.dec_wih, H_, H_);
  enc_ih_p_ = PackGates(w.enc_wih, H_, 1);
  enc_b_p_ = PackGates(w.enc_b, H_, 1);
  dec_b_p_ = PackGates(w.dec_b, H_, 1);
  __builtin_cpu_init();
  avx2_ = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// ---------------------------------------------------------------------------------------------
// A process-wide pool of persistent helper threads: Run(parts, threads, fn) calls fn(0..parts-1) on
// up to `threads` threads (the caller and threads - 1 helpers), each taking the next part as it
// finishes one: with more parts than threads, a thread that was descheduled (the pipeline's other
// stages share the cores) delays the call by one part, not by half of it. One parallel call at a
// time; a concurrent caller runs its parts itself.
namespace {
class Pool {
 public:
  static Pool& Get() {
    static Pool p;
    return p;
  }
  void Run(int parts, int threads, const std::function<void(int)>& fn) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock() || parts <= 1 || threads <= 1) {
      for (int p = 0; p < parts; p++) fn(p);
      return;
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      while (static_cast<int>(workers_.size()) < std::min(threads - 1, 15)) workers_.emplace_back([this] { Work(); });
      job_ = &fn;
      parts_ = parts;
      next_ = 0;
      remaining_ = parts;
      gen_++;
    }
    cv_.notify_all();
    Drain();
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return remaining_ == 0; });
    job_ = nullptr;
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

 private:
  // Takes parts until none is left (mu_ not held on entry).
  void Drain() {
    std::unique_lock<std::mutex> lk(mu_);
    while (job_ && next_ < parts_) {
      const int p = next_++;
      const auto* fn = job_;
      lk.unlock();
      (*fn)(p);
      lk.lock();
      if (--remaining_ == 0) done_cv_.notify_all();
    }
  }
  void Work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || gen_ != seen; });
        if (stop_) return;
        seen = gen_;
      }
      Drain();
    }
  }
  std::mutex run_mu_, mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  int parts_ = 0, next_ = 0, remaining_ = 0;
  uint64_t gen_ = 0;
  bool stop_ = false;
};

// Thread-local scratch, 32-byte aligned, grown on demand (no allocation per call once warm).
float* Scratch(size_t floats) {
  thread_local std::vector<float> buf;
  if (buf.size() < floats + 8) buf.resize(floats + 8);
  auto a = reinterpret_cast<uintptr_t>(buf.data());
  return reinterpret_cast<float*>((a + 31) & ~uintptr_t{31});
}
}  // namespace

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

// tanh as a [7/6] rational function x P(x^2) / Q(x^2) on [-7, 7], clamped outside (tanh(7) = 1 - 1.7e-6).
// Coefficients fitted here by Lawson-weighted least squares for the least maximum error: 9.0e-7 in
// exact arithmetic, 1.1e-6 evaluated in float (200,001 points; clamp included). History: Eigen's [13/6]
// (a few ulp) spilled constants in the cell; a [9/6] on [-9, 9] (7.9e-7) took the forward pass from
// 66.6k to 88.5k windows/s; this [7/6] saves one FMA per tanh (5 per unit and vector): 1 thread
// 89.4k -> 92.4k, 2 threads 178.1k -> 189.3k windows/s, CLI LSTM 144.3k -> 151.9k events/s (medians,
// interleaved A/B). Reconstructions agree with LibTorch within 1.6e-6 (was 8.5e-7; the test's bound is
// 1e-5: MlForward.MatchesLibTorchWithin1e5).
// Returned as the pair P, Q: the cell multiplies such fractions and divides once per product.
struct Frac256 {
  __m256 p, q;
};
IOTP_AVX2 static inline Frac256 TanhFrac256(__m256 x) {
  const __m256 lim = _mm256_set1_ps(7.0f);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(3.930046331271364e-06f), _mm256_set1_ps(0.002276996282497154f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(0.12302191477282154f));
  p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(0.9999956879616794f));
  p = _mm256_mul_ps(x, p);
  __m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(0.0001423516299075174f), _mm256_set1_ps(0.02107221483541139f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(0.45634040126110226f));
  q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(1.0f));
  return {p, q};
}

// acc[g][v] += sum_k Wp[k][g] * hin[k][v]: the [4 gates x K] x [K x 8NV] micro-kernel of one unit.
// Written with named accumulators: GCC keeps an array of __m256 passed by reference in memory
// (a store per FMA), these stay in registers (12 accumulators + 3 h vectors + 1 weight = 16 ymm).
#define IOTP_FMA_ROW(g, w)                                            \
  do {                                                                \
    const __m256 wv = _mm256_broadcast_ss(w);                         \
    a##g##0 = _mm256_fmadd_ps(wv, h0, a##g##0);                       \
    if constexpr (NV > 1) a##g##1 = _mm256_fmadd_ps(wv, h1, a##g##1); \
    if constexpr (NV > 2) a##g##2 = _mm256_fmadd_ps(wv, h2, a##g##2); \
  } while (0)
// Not inlined: inlined into the unit loop, GCC hoists the cell's constants out of it and spills
// accumulators inside the k loop; the call costs ~24 moves per unit (vs 12 x K FMAs).
// acc0 holds the initial sums (may be acc itself).
template <int NV>
IOTP_AVX2 __attribute__((noinline)) static void UnitGemm(const float* Wp, int K, const float* hin,
                                                         const __m256 (&acc0)[4][NV], __m256 (&acc)[4][NV]) {
  static_assert(NV >= 1 && NV <= 3);
  constexpr int L = 8 * NV;
  const __m256 z = _mm256_setzero_ps();
  __m256 a00 = acc0[0][0], a10 = acc0[1][0], a20 = acc0[2][0], a30 = acc0[3][0];
  __m256 a01 = NV > 1 ? acc0[0][NV > 1 ? 1 : 0] : z, a11 = NV > 1 ? acc0[1][NV > 1 ? 1 : 0] : z,
         a21 = NV > 1 ? acc0[2][NV > 1 ? 1 : 0] : z, a31 = NV > 1 ? acc0[3][NV > 1 ? 1 : 0] : z;
  __m256 a02 = NV > 2 ? acc0[0][NV > 2 ? 2 : 0] : z, a12 = NV > 2 ? acc0[1][NV > 2 ? 2 : 0] : z,
         a22 = NV > 2 ? acc0[2][NV > 2 ? 2 : 0] : z, a32 = NV > 2 ? acc0[3][NV > 2 ? 2 : 0] : z;
  for (int k = 0; k < K; k++) {
    const float* hk = hin + k * L;
    const __m256 h0 = _mm256_load_ps(hk);
    const __m256 h1 = NV > 1 ? _mm256_load_ps(hk + 8) : z;
    const __m256 h2 = NV > 2 ? _mm256_load_ps(hk + 16) : z;
    const float* w = Wp + k * 4;
    IOTP_FMA_ROW(0, w);
    IOTP_FMA_ROW(1, w + 1);
    IOTP_FMA_ROW(2, w + 2);
    IOTP_FMA_ROW(3, w + 3);
  }
  acc[0][0] = a00, acc[1][0] = a10, acc[2][0] = a20, acc[3][0] = a30;
  if constexpr (NV > 1) acc[0][1] = a01, acc[1][1] = a11, acc[2][1] = a21, acc[3][1] = a31;
  if constexpr (NV > 2) acc[0][2] = a02, acc[1][2] = a12, acc[2][2] = a22, acc[3][2] = a32;
}
#undef IOTP_FMA_ROW

// The LSTM cell for unit j from its 4 gate pre-activations (i, f, o pre-scaled by 1/2), with two
// divisions instead of five: with tanh = P/Q, a gate s = (1 + tanh(a)) / 2 = (Q + P) / 2Q, so
//   c' = f c + i g = [(Qf + Pf) c Qi Qg + (Qi + Pi) Pg Qf] / (2 Qf Qi Qg)
//   h  = o tanh(c') = (Qo + Po) Pc / (2 Qo Qc).
// |x| <= 7 gives 1 <= Q < 91, so the products stay far from float's limits and keep its relative
// precision (MlForward tests: same predictions, LibTorch agreement at 1e-5).
template <int NV>
IOTP_AVX2 static inline void CellStore(const __m256 (&acc)[4][NV], float* c, float* hout) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; v++) {
    const Frac256 ti = TanhFrac256(acc[0][v]), tf = TanhFrac256(acc[1][v]), tg = TanhFrac256(acc[2][v]);
    const __m256 qig = _mm256_mul_ps(ti.q, tg.q);
    const __m256 keep = _mm256_mul_ps(_mm256_mul_ps(_mm256_add_ps(tf.q, tf.p), _mm256_load_ps(c + 8 * v)), qig);
    const __m256 num = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_add_ps(ti.q, ti.p), tg.p), tf.q, keep);
    const __m256 cv = _mm256_div_ps(num, _mm256_mul_ps(_mm256_add_ps(tf.q, tf.q), qig));
    _mm256_store_ps(c + 8 * v, cv);
    const Frac256 to = TanhFrac256(acc[3][v]), tc = TanhFrac256(cv);
    _mm256_store_ps(hout + 8 * v, _mm256_div_ps(_mm256_mul_ps(_mm256_add_ps(to.q, to.p), tc.p),
                                                _mm256_mul_ps(_mm256_add_ps(to.q, to.q), tc.q)));
  }
}

// The cell for all H units of a step, after their GEMMs: gates[j][g][L] -> c, hout. Run as a loop of
// its own, the dependency chains of consecutive units (tanh, division, c, tanh(c)) overlap; run after
// each unit's GEMM, the chains of 3 vectors stalled the core.
template <int NV>
IOTP_AVX2 __attribute__((noinline)) static void CellAll(const float* gates, int H, float* c, float* hout) {
  constexpr int L = 8 * NV;
#pragma GCC unroll 2
  for (int j = 0; j < H; j++)
    CellStore<NV>(*reinterpret_cast<const __m256(*)[4][NV]>(gates + j * 4 * L), c + j * L, hout + j * L);
}

// n <= 8*NV windows starting at x. scratch: (2T + 11H) * 8NV floats, 32-byte aligned.
template <int NV>
IOTP_AVX2 void LstmAeForward::RunBlockAvx2(const float* x, size_t n, float* recon, float* e_win, float* e_last,
                                           float* scratch) const {
  constexpr int L = 8 * NV;
  const int T = T_, H = H_;
  float* xT = scratch;             // T x L
  float* yT = xT + T * L;          // T x L
  float* hA = yT + T * L;          // H x L
  float* hB = hA + H * L;          // H x L
  float* c = hB + H * L;           // H x L
  float* pre = c + H * L;          // H x 4 x L
  float* gates = pre + 4 * H * L;  // H x 4 x L
  auto unit_acc = [&](int j) -> __m256(&)[4][NV] { return *reinterpret_cast<__m256(*)[4][NV]>(gates + j * 4 * L); };
  for (int t = 0; t < T; t++)
    for (int l = 0; l < L; l++) xT[t * L + l] = static_cast<size_t>(l) < n ? x[static_cast<size_t>(l) * T + t] : 0.f;
  std::fill(c, c + H * L, 0.f);
  std::fill(hA, hA + H * L, 0.f);
  // Encoder.
  for (int t = 0; t < T; t++) {
    for (int j = 0; j < H; j++) {
      __m256(&acc)[4][NV] = unit_acc(j);
#pragma GCC unroll 4
      for (int g = 0; g < 4; g++) {  // x_t w_ih + b, then the recurrent sum (h_0 = 0)
        const __m256 w = _mm256_broadcast_ss(&enc_ih_p_[j * 4 + g]), b = _mm256_broadcast_ss(&enc_b_p_[j * 4 + g]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; v++) acc[g][v] = _mm256_fmadd_ps(_mm256_load_ps(xT + t * L + 8 * v), w, b);
      }
      if (t > 0) UnitGemm<NV>(enc_hh_p_.data() + static_cast<size_t>(j) * H * 4, H, hA, acc, acc);
    }
    CellAll<NV>(gates, H, c, hB);
    std::swap(hA, hB);
  }
  // Decoder input z (= last encoder h) is the same at every step: z W_ih^T + b once.
  for (int j = 0; j < H; j++) {
    __m256 acc[4][NV];
    for (int g = 0; g < 4; g++)
      for (int v = 0; v < NV; v++) acc[g][v] = _mm256_broadcast_ss(&dec_b_p_[j * 4 + g]);
    UnitGemm<NV>(dec_ih_p_.data() + static_cast<size_t>(j) * H * 4, H, hA, acc, acc);
    for (int g = 0; g < 4; g++)
      for (int v = 0; v < NV; v++) _mm256_store_ps(pre + (j * 4 + g) * L + 8 * v, acc[g][v]);
  }
  std::fill(c, c + H * L, 0.f);
  std::fill(hA, hA + H * L, 0.f);
  for (int t = 0; t < T; t++) {
    if (t == 0) {
      CellAll<NV>(pre, H, c, hB);  // h_0 = 0: the gates are the constant input term
    } else {
      for (int j = 0; j < H; j++)  // gates = pre (the constant input term) + recurrent sum
        UnitGemm<NV>(dec_hh_p_.data() + static_cast<size_t>(j) * H * 4, H, hA,
                     *reinterpret_cast<const __m256(*)[4][NV]>(pre + j * 4 * L), unit_acc(j));
      CellAll<NV>(gates, H, c, hB);
    }
    std::swap(hA, hB);
    __m256 y[NV];
    for (int v = 0; v < NV; v++) y[v] = _mm256_set1_ps(out_b_);
    for (int j = 0; j < H; j++) {
      const __m256 w = _mm256_broadcast_ss(&out_w_[j]);
      for (int v = 0; v < NV; v++) y[v] = _mm256_fmadd_ps(w, _mm256_load_ps(hA + j * L + 8 * v), y[v]);
    }
    for (int v = 0; v < NV; v++) _mm256_store_ps(yT + t * L + 8 * v, y[v]);
  }
  if (recon)
    for (size_t l = 0; l < n; l++)
      for (int t = 0; t < T; t++) recon[l * T + t] = yT[t * L + static_cast<int>(l)];
  if (e_win) {
    alignas(32) float ew[L], el[L];
    const __m256 invT = _mm256_set1_ps(1.f / static_cast<float>(T));
    for (int v = 0; v < NV; v++) {
      __m256 s = _mm256_setzero_ps(), d = s;
      for (int t = 0; t < T; t++) {
        d = _mm256_sub_ps(_mm256_load_ps(xT + t * L + 8 * v), _mm256_load_ps(yT + t * L + 8 * v));
        s = _mm256_fmadd_ps(d, d, s);
      }
      _mm256_store_ps(ew + 8 * v, _mm256_mul_ps(s, invT));
      _mm256_store_ps(el + 8 * v, _mm256_mul_ps(d, d));
    }
    for (size_t l = 0; l < n; l++) {
      e_win[l] = ew[l];
      e_last[l] = el[l];
    }
  }
}

void LstmAeForward::RunRange(const float* x, size_t begin, size_t end, float* recon, float* e_win,
                             float* e_last) const {
  const size_t T = static_cast<size_t>(T_);
  if (avx2_) {
    float* scratch = Scratch((2 * T + 11 * static_cast<size_t>(H_)) * kBlock);
    for (size_t i = begin; i < end;) {
      const size_t m = std::min<size_t>(kBlock, end - i);
      float* r = recon ? recon + i * T : nullptr;
      float* ew = e_win ? e_win + i : nullptr;
      float* el = e_last ? e_last + i : nullptr;
      if (m > 16)
        RunBlockAvx2<3>(x + i * T, m, r, ew, el, scratch);
      else if (m > 8)
        RunBlockAvx2<2>(x + i * T, m, r, ew, el, scratch);
      else
        RunBlockAvx2<1>(x + i * T, m, r, ew, el, scratch);
      i += m;
    }
    return;
  }
  thread_local std::vector<float> one;
  one.resize(T);
  for (size_t i = begin; i < end; i++) {
    float* r = recon ? recon + i * T : one.data();
    RunOneScalar(x + i * T, r);
    if (e_win) {
      const float* a = x + i * T;
      float s = 0;
      for (size_t t = 0; t < T; t++) s += (a[t] - r[t]) * (a[t] - r[t]);
      e_win[i] = s / static_cast<float>(T);
      const float d = a[T - 1] - r[T - 1];
      e_last[i] = d * d;
    }
  }
}

void LstmAeForward::Run(const float* x, size_t n, float* recon, float* e_win, float* e_last, int threads) const {
  // Below ~2 blocks per thread the hand-off costs more than it saves. Work is cut into parts of
  // whole blocks, about 8 per thread, taken dynamically (see Pool).
  const size_t blocks = (n + kBlock - 1) / kBlock;
  const int use = static_cast<int>(std::max<size_t>(1, std::min<size_t>(std::max(threads, 1), blocks / 2)));
  if (use == 1) return RunRange(x, 0, n, recon, e_win, e_last);
  const size_t per = std::max<size_t>(2, blocks / (static_cast<size_t>(use) * 8));
  const int parts = static_cast<int>((blocks + per - 1) / per);
  Pool::Get().Run(parts, use, [&](int p) {
    const size_t b = per * static_cast<size_t>(p);
    const size_t e = std::min(blocks, b + per);
    RunRange(x, std::min(n, b * kBlock), std::min(n, e * kBlock), recon, e_win, e_last);
  });
}

void LstmAeForward::Reconstruct(const float* x, size_t n, float* recon, int threads) const {
  Run(x, n, recon, nullptr, nullptr, threads);
}

void LstmAeForward::Errors(const float* x, size_t n, float* e_win, float* e_last, int threads) const {
  Run(x, n, nullptr, e_win, e_last, threads);
}

}  // namespace iotpipe::ml
