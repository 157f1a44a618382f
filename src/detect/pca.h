// Multivariate detection for an asset (several sensors read together): PCA with Hotelling's T² and the Q
// statistic (squared prediction error), and per-channel attribution (each channel's share of the
// residual, or of T² when the residual is small). Fit on normal rows, then score one row at a time.
//
// Standardise with the training mean/sd; keep the principal components explaining `variance` of the
// variance; T² = Σ_k (p_k·z)² / λ_k; Q = |z - P Pᵀ z|². Control limits are quantiles of the training
// statistics times `limit_factor`; severity = max(T²/T²_lim, Q/Q_lim), smoothed by an EWMA (alpha) so
// persistent faults stay flagged (>= 1: anomalous).
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"

namespace iotpipe {

struct PcaParams {
  double variance = 0.9;      // fraction of the variance the kept components explain
  double quantile = 0.99;     // training quantile for the control limits
  double limit_factor = 1.0;  // limits = quantile * factor
  double alpha = 0.1;         // EWMA weight of the smoothed severity (1: no smoothing)
  double t2_weight = 1.0;     // severity = max(t2_weight * T²/T²_lim, Q/Q_lim); 0: Q (SPE) only
};

class PcaDetector {
 public:
  explicit PcaDetector(PcaParams p = {}) : p_(p) {}
  std::string_view name() const { return "pca"; }
  // rows: n x d, n > d.
  Status Fit(const std::vector<std::vector<double>>& rows);
  size_t dims() const { return mean_.size(); }
  size_t components() const { return k_; }
  // Raw statistics of one row.
  void Stats(const double* row, double* t2, double* q) const;
  // Severity of one row (unsmoothed) and, if attribution is non-null, each channel's share (sums to 1).
  double Severity(const double* row, std::vector<double>* attribution) const;
  // Streaming use: smoothed severity; `state` is one double per stream, start at 0.
  double Update(double* state, const double* row, std::vector<double>* attribution) const;
  // Bytes of model (shared by an asset's streams) and of per-stream state.
  size_t model_bytes() const { return (mean_.size() * (3 + k_) + k_) * sizeof(double); }
  static constexpr size_t state_bytes() { return sizeof(double); }
  // The fitted model as numbers ([d, k, t2_lim, q_lim, mean, sd, eig, comp]), for checkpoints, and back.
  // Import validates the shape and that every number is finite; the params stay those of the constructor.
  std::vector<double> Export() const;
  Status Import(const std::vector<double>& v);
  double t2_limit() const { return t2_lim_; }
  double q_limit() const { return q_lim_; }

 private:
  PcaParams p_;
  std::vector<double> mean_, sd_;
  std::vector<double> comp_;  // k x d, row-major
  std::vector<double> eig_;   // k eigenvalues
  size_t k_ = 0;
  double t2_lim_ = 1, q_lim_ = 1;
};

// Eigen-decomposition of a symmetric d x d matrix (row-major) by Jacobi rotations: eigenvalues descending,
// eigenvectors as rows of *vecs.
void SymmetricEigen(std::vector<double> a, size_t d, std::vector<double>* vals, std::vector<double>* vecs);

}  // namespace iotpipe
