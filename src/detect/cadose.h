// The cadose detector: a port of CAD OSE (Contextual Anomaly Detector, Open Source Edition, M. Smirnov 2016;
// numenta/NAB nab/detectors/context_ose/*.py, NAB standard score 69.9 on the full corpus) to a streaming
// iotpipe detector with flat, bounded per-sensor state.
//
// The algorithm, as in the original:
//  - each value is binned into 2^3 levels of [lo, hi] and encoded as three "sensor facts" (one per bit);
//  - contexts pair a left semi-context (the previous step's facts: sensor facts + active "neurons", i.e. the
//    ids of the contexts that fired) with a right semi-context (the current sensor facts); they are learnt
//    on-line (a new zero-level context each time the pair is unseen, plus contexts from the crossing of
//    existing ones), counted when their left side matches and activated when both sides match;
//  - the anomaly score at a step where the previous step's prediction missed a fact is
//    (1 - active/selected contexts + new/potential-new contexts) / 2, and 0 when the prediction held;
//  - after a score >= base_threshold the next rest_period scores are reported as 0 (one alert per event).
// The arithmetic follows the Python 2 original step for step, including its orderings (Python 2 tuple
// hashes break ties between equally active contexts, Python 2 dict iteration order decides the ids of new
// contexts) and its quirk of never counting context 0 when no zero-level context was added in a step, so
// that on the same input and range it gives the published per-file scores.
//
// What differs (streaming and bounded):
//  - the value range: the original receives each NAB file's minimum and maximum in advance (look-ahead).
//    Here [lo, hi] is either a configured per-sensor range (the range hint: a sensor's datasheet range,
//    which the live pipeline can have) or, without one, the range seen so far (min/max of past values,
//    including the current one: online, no look-ahead);
//  - the rest period: NAB passes probation/5 per file (120 to 150 points); here one fixed value;
//  - memory: the original's context memory grows without bound. Here it lives in the sensor's state bytes
//    with fixed capacities (contexts, left semi-contexts, facts); when full, the detector stops adding
//    contexts (it keeps scoring with what it has learnt). state_bytes() reports the size.
#pragma once
#include <map>
#include <string>

#include "detect/detector.h"

namespace iotpipe {

struct CadOseParams {
  double base_threshold = 0.75;  // a score at or above it starts a rest period
  int rest_period = 150;         // scores reported as 0 after one >= base_threshold (NAB: probation / 5)
  int max_left_len = 7;          // maxLeftSemiContextsLenght
  int max_active = 15;           // maxActiveNeuronsNum
  int value_bits = 3;            // numNormValueBits (bins = 2^bits)
  // The two published versions: false/0 is the one NAB's results/contextOSE files (and its 69.9) come from
  // (smirmik/CAD 2016: sensor facts 0..5, a score at every step); true/65536 is NAB's later cad_ose.py
  // (sensor facts offset by 65536, score 0 when the previous step predicted every current fact).
  bool predict_gate = false;
  uint32_t fact_base = 0;
  // Range of the values: fixed when lo < hi or (lo == hi and fixed_range), else learnt on-line.
  bool fixed_range = false;
  double lo = 0, hi = 0;
  // Capacities of the per-sensor context memory.
  // (on NAB's dev subset only art_noisy, pure noise, fills them; 16384 contexts leave every score unchanged)
  uint32_t max_contexts = 1u << 14;
  uint32_t max_left = 1u << 13;
  uint32_t max_facts = 3u << 14;  // facts of all left semi-contexts together
  // A row is predicted anomalous when its score is >= this (the NAB-optimised standard threshold).
  double alert_threshold = 0.7051;
};

class CadOseDetector final : public Detector {
 public:
  explicit CadOseDetector(CadOseParams p = {});
  std::string_view name() const override { return "cadose"; }
  std::string_view version() const override { return "cadose-v1"; }
  size_t state_bytes() const override { return stride_; }
  void ScoreBatch(ReadingBatch& batch, StateStore& store) const override;
  void Bind(const Interner* sensors, Interner* models) const override { ranges_.Bind(sensors); }

  // Configured per-sensor value ranges (sensor name -> [lo, hi]); sensors without one use params().
  void SetSensorRanges(SensorRanges::Map ranges) { ranges_.Set(std::move(ranges)); }

  // Single-sensor API (tests, harness): initialise a state, score one value (the CAD OSE anomaly score).
  void InitState(std::byte* st) const;
  double Step(std::byte* st, double value) const;
  const CadOseParams& params() const { return p_; }

  // Memory use of one state (for reports and tests).
  struct Usage {
    uint32_t contexts, left, facts;
    bool full;
  };
  Usage usage(const std::byte* st) const;

 private:
  struct Layout;
  CadOseParams p_;
  size_t stride_ = 0;
  size_t off_ctx_ = 0, off_left_ = 0, off_table_ = 0, off_facts_ = 0, off_post_ = 0, off_crossed_ = 0;
  uint32_t table_size_ = 0;
  SensorRanges ranges_;
  friend struct CadOseEngine;
};

// Python 2.7's hash of a tuple of non-negative ints (64-bit build), which CAD OSE sorts by.
int64_t Py2TupleHash(const uint32_t* items, size_t n);

}  // namespace iotpipe
