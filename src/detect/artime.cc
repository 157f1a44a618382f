// artime: see artime.h (ARTime's algorithm, Mark Hampton; independent implementation).
#include "detect/artime.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

namespace iotpipe {

// Fixed part of a sensor's state; arrays follow at the offsets computed in the constructor.
struct ArtimeDetector::Hdr {
  int64_t i;      // points seen + 1 (1-based index of the next point)
  int64_t dsi;    // 1-based index of the next down-sampled step
  double ds_avg;  // running average of block means (spike side)
  double lo, hi;  // value range
  int32_t fixed;  // range configured (else learnt at the end of the probation)
  int32_t n_cat;  // categories in use
  int32_t med_level, below_med, above_med;
  int32_t mask_after_cat;
  int64_t last_anomaly_i, last_rho_update_i, no_new_cat_count;
  double last_anomaly_sim;
  double rho_lb, rho_ub;
  double match_sum;  // mean of every step's best match -> rho_ub
  int64_t match_n;
  double hist_sum, hist_last;  // matches of past anomalies (sum, last), for the rho_lb floor
  int64_t hist_n;
  int32_t sim_pos, diff_pos;  // ring positions
  int32_t ds_pos, pad;
};

namespace {

constexpr size_t Align8(size_t n) { return (n + 7) & ~size_t{7}; }

// A DVFA (dual-vigilance fuzzy ART) over complement-coded samples of 2*dim numbers, stored in caller memory.
struct Art {
  double* w;  // categories, 2*dim each
  int32_t* n_cat;
  uint32_t cap;
  int dim;
  double rho_lb, rho_ub;
  double match = 0, energy = 0;  // best match of the last sample and its energy match

  // Returns -1 when the sample fits no category (a new cluster; also when not learning), else >= 1.
  int Train(const double* f, bool learning) {
    const int dc = 2 * dim;
    thread_local std::vector<double> x, m, me;
    x.resize(dc);
    for (int k = 0; k < dim; k++) {
      x[k] = f[k];
      x[dim + k] = 1.0 - f[k];
    }
    if (*n_cat == 0) {  // the first sample only creates the all-ones (uncommitted) category
      std::fill(w, w + dc, 1.0);
      *n_cat = 1;
      match = energy = 0;
      return 1;
    }
    const int n = *n_cat;
    m.resize(n);
    me.resize(n);
    double best = 0;
    int bmu = -1;
    double top = -1;
    for (int j = 0; j < n; j++) {
      const double* wj = w + static_cast<size_t>(j) * dc;
      double num = 0, nw = 0;
      for (int k = 0; k < dc; k++) {
        num += std::min(x[k], wj[k]);
        nw += wj[k];
      }
      if (nw == 0) nw = 0.001;
      const double fs = num / nw;
      const double ne = std::min(x[dim - 1], wj[dim - 1]) + std::min(x[dc - 1], wj[dc - 1]);
      const double we = wj[dim - 1] + wj[dc - 1];
      const double es = we > 0 ? ne / we : 0.0;
      m[j] = fs * fs * fs * es * es;
      me[j] = es;
      if (m[j] > best) {
        best = m[j];
        bmu = j;
      }
      top = std::max(top, m[j]);
    }
    match = best;
    energy = bmu >= 0 ? me[bmu] : 0.0;
    if (!learning) return -1;
    bool resonant = false;
    for (int j = 0; j < n; j++) {
      if (m[j] < rho_ub) continue;
      double* wj = w + static_cast<size_t>(j) * dc;
      for (int k = 0; k < dc; k++) wj[k] = std::min(x[k], wj[k]);  // fast learning: w <- x ^ w
      resonant = true;
    }
    if (resonant) return 1;
    const bool same_cluster = top >= rho_lb;
    if (static_cast<uint32_t>(n) < cap) {  // a new category holding the sample
      std::copy(x.begin(), x.end(), w + static_cast<size_t>(n) * dc);
      *n_cat = n + 1;
    }
    return same_cluster ? 1 : -1;
  }
};

// ARTime's similarity of two feature vectors: cosine, or 1 - |other| when one of them is zero.
double Similarity(const double* a, const double* b, int n) {
  double na = 0, nb = 0, dot = 0;
  for (int k = 0; k < n; k++) {
    na += a[k] * a[k];
    nb += b[k] * b[k];
    dot += a[k] * b[k];
  }
  na = std::sqrt(na);
  nb = std::sqrt(nb);
  if (na == 0) return 1 - nb;
  if (nb == 0) return 1 - na;
  return dot / (na * nb);
}

// Full Haar decomposition of n = 2^k values: [approximation, coarsest detail, ..., finest details]; a detail
// is (second - first) / sqrt(2) (the sign convention of Julia's Wavelets.jl, which ARTime's published
// results come from; the other sign changes 9 of the 26 dev-subset files' scores).
void Haar(const double* in, double* out, int n) {
  double tmp[64];
  std::copy(in, in + n, tmp);
  const double r = 1.0 / std::sqrt(2.0);
  for (int len = n; len > 1; len /= 2) {
    const int half = len / 2;
    double a[32];
    for (int k = 0; k < half; k++) {
      a[k] = (tmp[2 * k] + tmp[2 * k + 1]) * r;
      out[half + k] = (tmp[2 * k + 1] - tmp[2 * k]) * r;
    }
    std::copy(a, a + half, tmp);
  }
  out[0] = tmp[0];
}

void MinMaxScale(double* v, int n) {
  const double mn = *std::min_element(v, v + n);
  for (int k = 0; k < n; k++) v[k] -= mn;
  const double mx = *std::max_element(v, v + n);
  if (mx != 0)
    for (int k = 0; k < n; k++) v[k] /= mx;
}

}  // namespace

// The per-step logic over one sensor's state.
struct ArtimeDetector::Engine {
  const ArtimeDetector& d;
  std::byte* st;
  Hdr* h;
  double* ds_win;
  int32_t* med;
  double* fwin;
  double* raw;
  double* sim;
  double* diff;
  double* w;

  Engine(const ArtimeDetector& det, std::byte* s)
      : d(det),
        st(s),
        h(reinterpret_cast<Hdr*>(s)),
        ds_win(reinterpret_cast<double*>(s + det.off_ds_)),
        med(reinterpret_cast<int32_t*>(s + det.off_med_)),
        fwin(reinterpret_cast<double*>(s + det.off_fw_)),
        raw(reinterpret_cast<double*>(s + det.off_raw_)),
        sim(reinterpret_cast<double*>(s + det.off_sim_)),
        diff(reinterpret_cast<double*>(s + det.off_diff_)),
        w(reinterpret_cast<double*>(s + det.off_w_)) {}

  Art MainArt() { return Art{w, &h->n_cat, d.p_.max_categories, d.dim_, h->rho_lb, h->rho_ub}; }

  // Down-sampled value of the last sstep points: the spike side's extreme, or the mean.
  double DownSample() {
    const int n = d.sstep_;
    double sum = 0, mx = ds_win[0], mn = ds_win[0];
    for (int k = 0; k < n; k++) {
      sum += ds_win[k];
      mx = std::max(mx, ds_win[k]);
      mn = std::min(mn, ds_win[k]);
    }
    const double mean = sum / n;
    if (h->dsi == 1) h->ds_avg = mean;
    h->ds_avg = (h->ds_avg + mean) / 2;
    double ds = std::abs(mx - h->ds_avg) < std::abs(mn - h->ds_avg) ? mn : mx;
    if (std::abs(ds - mean) < d.p_.spike_fraction * mean) ds = mean;
    return ds;
  }

  // Normalise, quantise and snap to the running median level (step k, 1-based).
  double Levelize(double v, int64_t k) {
    const int L = d.p_.levels;
    double x = v - h->lo;
    if (h->hi - h->lo != 0) x /= (h->hi - h->lo);
    x = std::clamp(x, 0.0, 1.0);
    const int level = static_cast<int>(std::nearbyint(x * L));  // half to even, as Julia's round
    x = static_cast<double>(level) / L;
    med[level]++;
    const int64_t medpos = k / 2;
    if (k == 1) h->med_level = level;
    if (h->med_level > level)
      h->below_med++;
    else if (h->med_level < level)
      h->above_med++;
    if (medpos < h->above_med) {
      h->below_med += med[h->med_level];
      h->med_level++;
      while (h->med_level < L && med[h->med_level] == 0) h->med_level++;
      h->above_med -= med[h->med_level];
    } else if (medpos < h->below_med) {
      h->above_med += med[h->med_level];
      h->med_level--;
      while (h->med_level > 0 && med[h->med_level] == 0) h->med_level--;
      h->below_med -= med[h->med_level];
    }
    const double m = static_cast<double>(h->med_level) / L;
    if (std::abs(x - m) < d.p_.chomp) x = m;
    return x;
  }

  // Features of step k into f (2 * window numbers; zeros until the window is full).
  void Features(double level, int64_t k, double* f) {
    const int W = d.p_.window;
    std::memmove(fwin, fwin + 1, sizeof(double) * (W - 1));
    fwin[W - 1] = level;
    if (k < W) {
      std::fill(f, f + 2 * W, 0.0);
      return;
    }
    double dw[64];
    std::copy(fwin, fwin + W, dw);
    MinMaxScale(dw, W);
    Haar(dw, f, W);
    MinMaxScale(f, W);
    std::copy(fwin, fwin + W, f + W);
  }

  double Confidence(double match, double energy) const {
    const double fs = std::min(0.999, match);
    const double ub = ((1 - fs) - (1 - h->rho_ub)) / (1 - fs);
    const double lb = ((1 - fs) - (1 - h->rho_lb)) / (1 - fs);
    double s = ub * 0.35 + lb * 0.65 + (1.0 - energy) * 1.5;
    s = std::min(1.0, s);
    return std::round(s * 1e6) / 1e6;
  }

  // One down-sampled step i (1-based) with features f: learn, adapt the vigilances, return the score.
  double Detect(const double* f, int64_t i) {
    const int64_t tw = d.tw_, mask = d.mask_;
    const int n_sim = d.tw_ / 2 + 1, n_diff = d.tw_ + 1;
    const bool update_after_anomaly = (i - h->last_anomaly_i) == mask;
    const bool update_for_trend = (i - h->last_rho_update_i) >= tw / 2;
    const bool mask_after_anomaly = (i - h->last_anomaly_i) <= mask;
    if (i > tw + mask && h->mask_after_cat && h->no_new_cat_count >= mask) h->mask_after_cat = 0;
    Art art = MainArt();
    int cat = art.Train(f, i >= d.p_.window);
    if (i < d.p_.window) cat = -1;
    const double a = art.match;
    h->no_new_cat_count = cat == -1 ? 0 : h->no_new_cat_count + 1;
    h->match_sum += a;
    h->match_n++;
    sim[h->sim_pos] = a;
    h->sim_pos = (h->sim_pos + 1) % n_sim;
    diff[h->diff_pos] = h->rho_ub - a;
    h->diff_pos = (h->diff_pos + 1) % n_diff;
    if ((i - h->last_anomaly_i) < mask && h->hist_n > 0 && a < h->hist_last) {
      h->hist_sum += a - h->hist_last;
      h->hist_last = a;
    }
    const bool masking = h->mask_after_cat || mask_after_anomaly;
    const bool below_last = a < h->last_anomaly_sim * (mask_after_anomaly ? 0.90 : 0.70);
    double score = 0;
    if (i > tw && cat == -1 && (!masking || below_last)) {
      score = Confidence(a, art.energy);
      h->hist_sum += a;
      h->hist_n++;
      h->hist_last = a;
      h->last_anomaly_sim = a;
      h->last_anomaly_i = i;
    }
    if (cat == -1) h->mask_after_cat = 1;
    if (i > tw && (update_after_anomaly || update_for_trend)) {
      const double min_sim = *std::min_element(sim, sim + n_sim);
      const double new_ub = std::min(d.p_.rho_ub_cap, h->match_sum / static_cast<double>(h->match_n));
      const double prev_lb = h->rho_lb;
      double new_lb;
      if (prev_lb <= min_sim) {
        new_lb = prev_lb + (min_sim - prev_lb) * 0.19;
      } else {
        double decr = 0;
        if (i > tw * 2) {
          double s = 0;
          int c = 0;
          for (int k = 0; k < n_diff; k++)
            if (diff[k] > 0.05) {
              s += std::min(0.37, diff[k]);
              c++;
            }
          if (c > 0) decr = s / c;
        }
        decr = std::max(0.01, decr);
        new_lb = prev_lb - decr / 2;
        if (h->hist_n > 0) new_lb = std::max(h->hist_sum / static_cast<double>(h->hist_n), new_lb);
      }
      h->rho_lb = std::min(new_ub, new_lb);
      h->rho_ub = new_ub;
      h->last_rho_update_i = i;
      h->mask_after_cat = 1;
    }
    return score;
  }

  // End of the probation: fix the range, replay the probation's down-sampled values through the feature
  // pipeline, set the starting vigilance from a scratch ART, then learn the probation in order.
  void Probation() {
    const int tw = d.tw_, W = d.p_.window, dim = d.dim_;
    if (!h->fixed) {
      double lo = *std::min_element(raw, raw + tw), hi = *std::max_element(raw, raw + tw);
      const double m = (hi - lo) * d.p_.range_margin;
      h->lo = lo - m;
      h->hi = hi + m;
    }
    std::vector<double> feats(static_cast<size_t>(tw) * dim);
    for (int k = 1; k <= tw; k++) Features(Levelize(raw[k - 1], k), k, &feats[static_cast<size_t>(k - 1) * dim]);
    // Starting vigilance: order the full windows from least to most typical (sum of similarities), train a
    // scratch ART at initial_rho on them, and take its mean match over the second half.
    const int n = tw - W + 1;
    const double* base = &feats[static_cast<size_t>(W - 1) * dim];
    std::vector<double> sum(n, 0.0);
    for (int a = 0; a < n; a++) {
      sum[a] += 1.0;
      for (int b = 0; b < a; b++) {
        const double s = Similarity(base + static_cast<size_t>(a) * dim, base + static_cast<size_t>(b) * dim, dim);
        sum[a] += s;
        sum[b] += s;
      }
    }
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return sum[a] < sum[b]; });
    std::vector<double> sw(static_cast<size_t>(n) * 2 * dim);
    int32_t sn = 0;
    Art scratch{sw.data(), &sn, static_cast<uint32_t>(n), dim, d.p_.initial_rho, d.p_.initial_rho};
    std::vector<double> matches;
    for (int k = 0; k < n; k++) {
      scratch.Train(base + static_cast<size_t>(order[k]) * dim, true);
      matches.push_back(scratch.match);
    }
    const int from = std::clamp(tw / 2 - 1, 0, n - 1);
    double rho = 0;
    for (int k = from; k < n; k++) rho += matches[k];
    rho /= (n - from);
    h->rho_lb = h->rho_ub = rho;
    for (int k = 1; k <= tw; k++) Detect(&feats[static_cast<size_t>(k - 1) * dim], k);
  }

  double Step(double v) {
    ds_win[h->ds_pos] = v;
    h->ds_pos = (h->ds_pos + 1) % d.sstep_;
    double score = 0;
    if (h->i % d.sstep_ == 0) {
      const double ds = DownSample();
      if (h->dsi <= d.tw_) {
        raw[h->dsi - 1] = ds;
        if (h->dsi == d.tw_) Probation();
      } else {
        double f[128];
        Features(Levelize(ds, h->dsi), h->dsi, f);
        score = Detect(f, h->dsi);
      }
      h->dsi++;
    }
    h->i++;
    return score;
  }
};

ArtimeDetector::ArtimeDetector(ArtimeParams p) : p_(p) {
  p_.window = std::clamp(p_.window, 2, 32);
  if ((p_.window & (p_.window - 1)) != 0) p_.window = 8;  // Haar needs a power of two
  p_.levels = std::max(p_.levels, 2);
  p_.windows_per_probation = std::max(p_.windows_per_probation, 1);
  p_.max_categories = std::max<uint32_t>(p_.max_categories, 2);
  pp_ = std::max(p_.probation - p_.probation % 2, 2 * p_.window + 2);
  sstep_ = std::max(1, pp_ / (p_.window * p_.windows_per_probation));
  tw_ = std::max(pp_ / sstep_, 2 * p_.window);
  dim_ = 2 * p_.window;
  mask_ = p_.window * 3 / 2;
  size_t off = Align8(sizeof(Hdr));
  off_ds_ = off;
  off += Align8(sizeof(double) * sstep_);
  off_med_ = off;
  off += Align8(sizeof(int32_t) * (p_.levels + 1));
  off_fw_ = off;
  off += sizeof(double) * p_.window;
  off_raw_ = off;
  off += sizeof(double) * tw_;
  off_sim_ = off;
  off += sizeof(double) * (tw_ / 2 + 1);
  off_diff_ = off;
  off += sizeof(double) * (tw_ + 1);
  off_w_ = off;
  off += sizeof(double) * 2 * dim_ * p_.max_categories;
  stride_ = off;
}

void ArtimeDetector::InitState(std::byte* st) const {
  std::memset(st, 0, stride_);
  Hdr* h = reinterpret_cast<Hdr*>(st);
  h->i = 1;
  h->dsi = 1;
  if (p_.fixed_range) {
    h->fixed = 1;
    h->lo = p_.lo;
    h->hi = p_.hi;
  }
  double* sim = reinterpret_cast<double*>(st + off_sim_);
  std::fill(sim, sim + tw_ / 2 + 1, 1.0);
}

double ArtimeDetector::Step(std::byte* st, double value) const {
  if (!std::isfinite(value)) return 0;  // the parser dead-letters these; never poison the state
  Engine e(*this, st);
  return e.Step(value);
}

uint32_t ArtimeDetector::categories(const std::byte* st) const {
  return static_cast<uint32_t>(reinterpret_cast<const Hdr*>(st)->n_cat);
}

void ArtimeDetector::ScoreBatch(ReadingBatch& b, StateStore& store) const {
  const size_t n = b.size();
  for (size_t i = 0; i < n; i++) {
    bool fresh;
    std::byte* st = store.Get(b.sensor[i], &fresh);
    if (fresh) {
      InitState(st);
      if (const auto* r = ranges_.Find(b.sensor[i])) {
        Hdr* h = reinterpret_cast<Hdr*>(st);
        h->fixed = 1, h->lo = r->first, h->hi = r->second;
      }
    }
    const double s = Step(st, b.value[i]);
    b.score[i] = static_cast<float>(s);
    b.predicted[i] = s >= p_.alert_threshold;
  }
}

}  // namespace iotpipe
