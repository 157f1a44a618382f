// The likelihood detector: several cheap streaming raw scores, averaged and turned into an HTM-style anomaly
// likelihood (or, with combine = 0, one likelihood each, max-combined), with spatial novelty and suppression
// after a detection.
//  - raw scores (each mapped to [0, 1] as z / (z + k)):
//      level  |x - slow mean| / slow sd          (value novelty against the recent distribution)
//      change |x - previous| / mean |difference| (prediction error of a random-walk predictor)
//      shift  |fast mean - slow mean| / slow sd  (windowed distribution change: level shifts, drifts)
//      knn    distance of the last kWin values to their nearest subsequence among the last kHist values
//             (KNN-CAD's idea: a pattern never seen recently is novel, even within the usual range)
//  - anomaly likelihood (Numenta HTM, Ahmad et al. 2017): the long-run mean and variance of each raw
//    score (cumulative, then an EWMA over ~`long_window` points) model its normal behaviour; the mean of
//    the last `short_window` raw scores is compared with it and the likelihood is the Gaussian upper-tail
//    complement, reported on HTM's log scale (log(1 - L) / log(1e-10)). A sensor whose raw score is
//    habitually high (periodic data, noise) stops alerting; a sudden run of surprise stands out.
//  - spatial novelty (Numenta's NAB detector): a value beyond the range seen so far by a margin.
//  - suppression (CAD OSE / ARTime: NAB rewards only the first detection in a window): after the score
//    reaches a peak, later scores below the decaying peak are damped.
// The first `warmup` points only learn. State: a few doubles plus a ring of the last short_window raw
// scores per raw score (bounded, O(1) per point).
#pragma once
#include "detect/detector.h"

namespace iotpipe {

struct LikelihoodParams {
  int warmup = 150;              // points that only learn (NAB's probation is at least this on its files)
  double alpha_slow = 0.005;     // slow mean / variance of the value
  double alpha_fast = 0.2;       // fast mean (shift score)
  double alpha_diff = 0.005;     // mean |first difference|
  double k_raw = 1.0;            // z at which a raw score is 0.5
  double long_window = 600;      // EWMA horizon of the raw-score distribution
  double spatial_margin = 0.02;  // fraction of the seen range beyond it that is novel
  double spatial_score = 0.99;   // log-likelihood reported for a spatial novelty
  double peak_half_life = 300;   // points for the suppression peak to halve
  double suppress = 0.3;         // multiplier of scores below the recent peak
  int use_level = 0, use_change = 1, use_shift = 1, use_knn = 1;  // level is off: it adds FPs on NAB
  int combine = 1;     // 0: max of the scores' likelihoods; 1: likelihood of the raw scores' mean
  double knn_k = 1.0;  // knn distance (in mean |differences|) at which its raw score is 0.5
};

class LikelihoodDetector final : public PointDetector {
 public:
  static constexpr int kShort = 10;  // short window of raw scores
  static constexpr int kScores = 5;  // level, change, shift, knn, and their mean
  static constexpr int kHist = 512;  // history ring for the nearest-neighbour score
  static constexpr int kWin = 8;     // length of the compared subsequences
  struct State {
    double mean, var, fast, last, dabs, lo, hi, peak;
    double lmean[kScores], lvar[kScores];
    float ring[kScores][kShort];
    float hist[kHist];
    uint32_t n;
    uint32_t pos;
  };
  explicit LikelihoodDetector(LikelihoodParams p = {}) : p_(p) {}
  std::string_view name() const override { return "likelihood"; }
  std::string_view version() const override { return "likelihood-v1"; }
  size_t state_bytes() const override { return sizeof(State); }
  void InitState(std::byte* st) const override;
  double Update(std::byte* st, int64_t ts_us, double value) const override;
  const LikelihoodParams& params() const { return p_; }

 private:
  LikelihoodParams p_;
};

}  // namespace iotpipe
