#include "detect/pca.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace iotpipe {

void SymmetricEigen(std::vector<double> a, size_t d, std::vector<double>* vals, std::vector<double>* vecs) {
  std::vector<double> v(d * d, 0.0);
  for (size_t i = 0; i < d; i++) v[i * d + i] = 1.0;
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0;
    for (size_t i = 0; i < d; i++)
      for (size_t j = i + 1; j < d; j++) off += a[i * d + j] * a[i * d + j];
    if (off < 1e-22) break;
    for (size_t p = 0; p < d; p++) {
      for (size_t q = p + 1; q < d; q++) {
        const double apq = a[p * d + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[q * d + q] - a[p * d + p]) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (size_t k = 0; k < d; k++) {  // A <- A J (columns p, q)
          const double akp = a[k * d + p], akq = a[k * d + q];
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (size_t k = 0; k < d; k++) {  // A <- Jᵀ A (rows p, q)
          const double apk = a[p * d + k], aqk = a[q * d + k];
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (size_t k = 0; k < d; k++) {  // V <- V J
          const double vkp = v[k * d + p], vkq = v[k * d + q];
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<size_t> order(d);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return a[x * d + x] > a[y * d + y]; });
  vals->assign(d, 0);
  vecs->assign(d * d, 0);
  for (size_t r = 0; r < d; r++) {
    (*vals)[r] = a[order[r] * d + order[r]];
    for (size_t k = 0; k < d; k++) (*vecs)[r * d + k] = v[k * d + order[r]];  // column -> row
  }
}

std::vector<double> PcaDetector::Export() const {
  std::vector<double> v = {static_cast<double>(mean_.size()), static_cast<double>(k_), t2_lim_, q_lim_};
  v.insert(v.end(), mean_.begin(), mean_.end());
  v.insert(v.end(), sd_.begin(), sd_.end());
  v.insert(v.end(), eig_.begin(), eig_.end());
  v.insert(v.end(), comp_.begin(), comp_.end());
  return v;
}

Status PcaDetector::Import(const std::vector<double>& v) {
  if (v.size() < 4) return Status::Error("pca model: too short");
  for (double x : v)
    if (!std::isfinite(x)) return Status::Error("pca model: a number is not finite");
  if (v[0] < 1 || v[0] > 4096 || v[1] < 0 || v[1] > v[0] || v[0] != std::floor(v[0]) || v[1] != std::floor(v[1]))
    return Status::Error("pca model: bad dimensions");
  const size_t d = static_cast<size_t>(v[0]), k = static_cast<size_t>(v[1]);
  if (v.size() != 4 + 2 * d + k + k * d) return Status::Error("pca model: wrong length for its dimensions");
  if (v[2] <= 0 || v[3] <= 0) return Status::Error("pca model: control limits must be positive");
  const auto at = [&](size_t off, size_t n) {
    return std::vector<double>(v.begin() + static_cast<std::ptrdiff_t>(off),
                               v.begin() + static_cast<std::ptrdiff_t>(off + n));
  };
  std::vector<double> sd = at(4 + d, d);
  for (double x : sd)
    if (x <= 0) return Status::Error("pca model: standard deviations must be positive");
  mean_ = at(4, d);
  sd_ = std::move(sd);
  eig_ = at(4 + 2 * d, k);
  comp_ = at(4 + 2 * d + k, k * d);
  k_ = k;
  t2_lim_ = v[2];
  q_lim_ = v[3];
  return Status::OK();
}

Status PcaDetector::Fit(const std::vector<std::vector<double>>& rows) {
  if (rows.empty()) return Status::Error("pca: no training rows");
  const size_t d = rows[0].size(), n = rows.size();
  if (d == 0) return Status::Error("pca: rows have no channels");
  if (n <= d) return Status::Error("pca: need more training rows than channels");
  for (const auto& r : rows)
    if (r.size() != d) return Status::Error("pca: training rows differ in width");
  mean_.assign(d, 0);
  sd_.assign(d, 0);
  for (const auto& r : rows)
    for (size_t j = 0; j < d; j++) mean_[j] += r[j] / n;
  for (const auto& r : rows)
    for (size_t j = 0; j < d; j++) sd_[j] += (r[j] - mean_[j]) * (r[j] - mean_[j]) / (n - 1);
  for (size_t j = 0; j < d; j++) {
    // A constant channel gets a floor relative to its level, so any change in it is visible.
    sd_[j] = std::sqrt(std::max(sd_[j], 1e-12 + 1e-8 * mean_[j] * mean_[j]));
  }
  std::vector<double> cov(d * d, 0.0), z(d);
  for (const auto& r : rows) {
    for (size_t j = 0; j < d; j++) z[j] = (r[j] - mean_[j]) / sd_[j];
    for (size_t a = 0; a < d; a++)
      for (size_t b = 0; b < d; b++) cov[a * d + b] += z[a] * z[b] / (n - 1);
  }
  std::vector<double> vals, vecs;
  SymmetricEigen(cov, d, &vals, &vecs);
  const double total =
      std::accumulate(vals.begin(), vals.end(), 0.0, [](double s, double x) { return s + std::max(x, 0.0); });
  k_ = 0;
  double acc = 0;
  while (k_ < d - 1 && (total <= 0 || acc / total < p_.variance)) acc += std::max(vals[k_++], 0.0);
  k_ = std::max<size_t>(k_, 1);
  eig_.assign(vals.begin(), vals.begin() + k_);
  for (auto& e : eig_) e = std::max(e, 1e-9);
  comp_.assign(vecs.begin(), vecs.begin() + k_ * d);
  // Control limits: quantiles of the training statistics.
  std::vector<double> t2s(n), qs(n);
  t2_lim_ = q_lim_ = 1;
  for (size_t i = 0; i < n; i++) Stats(rows[i].data(), &t2s[i], &qs[i]);
  auto quant = [&](std::vector<double>& v) {
    size_t idx = std::min(n - 1, static_cast<size_t>(p_.quantile * (n - 1)));
    std::nth_element(v.begin(), v.begin() + idx, v.end());
    return std::max(v[idx], 1e-9);
  };
  t2_lim_ = quant(t2s) * p_.limit_factor;
  q_lim_ = quant(qs) * p_.limit_factor;
  return Status::OK();
}

void PcaDetector::Stats(const double* row, double* t2, double* q) const {
  const size_t d = mean_.size();
  double z[64];
  std::vector<double> zv;
  double* zp = z;
  if (d > 64) {
    zv.resize(d);
    zp = zv.data();
  }
  for (size_t j = 0; j < d; j++) zp[j] = (row[j] - mean_[j]) / sd_[j];
  double t = 0, zz = 0, proj2 = 0;
  for (size_t j = 0; j < d; j++) zz += zp[j] * zp[j];
  for (size_t k = 0; k < k_; k++) {
    double s = 0;
    for (size_t j = 0; j < d; j++) s += comp_[k * d + j] * zp[j];
    t += s * s / eig_[k];
    proj2 += s * s;
  }
  *t2 = t;
  *q = std::max(zz - proj2, 0.0);
}

double PcaDetector::Severity(const double* row, std::vector<double>* attribution) const {
  double t2, q;
  Stats(row, &t2, &q);
  const double sev = std::max(p_.t2_weight * t2 / t2_lim_, q / q_lim_);
  if (attribution) {
    const size_t d = mean_.size();
    std::vector<double> z(d), res(d);
    for (size_t j = 0; j < d; j++) z[j] = (row[j] - mean_[j]) / sd_[j];
    res = z;
    std::vector<double> contrib(d, 0.0);
    for (size_t k = 0; k < k_; k++) {
      double s = 0;
      for (size_t j = 0; j < d; j++) s += comp_[k * d + j] * z[j];
      for (size_t j = 0; j < d; j++) {
        res[j] -= s * comp_[k * d + j];
        contrib[j] += s * comp_[k * d + j] * z[j] / eig_[k] / t2_lim_;  // T² share (can be < 0)
      }
    }
    // Q dominates: squared residuals; else T² contributions.
    const bool q_side = q / q_lim_ >= p_.t2_weight * t2 / t2_lim_;
    double sum = 0;
    for (size_t j = 0; j < d; j++) {
      contrib[j] = q_side ? res[j] * res[j] : std::max(contrib[j], 0.0);
      sum += contrib[j];
    }
    for (auto& c : contrib) c = sum > 0 ? c / sum : 1.0 / d;
    *attribution = std::move(contrib);
  }
  return sev;
}

double PcaDetector::Update(double* state, const double* row, std::vector<double>* attribution) const {
  const double sev = Severity(row, attribution);
  *state += p_.alpha * (sev - *state);
  return *state;
}

}  // namespace iotpipe
