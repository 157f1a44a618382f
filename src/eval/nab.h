// NAB (Numenta Anomaly Benchmark) scoring in C++: the arithmetic of numenta/NAB's nab/sweeper.py
// (probation period, anomaly windows, scaled sigmoid, false-positive weighting), its threshold optimiser
// (one threshold per profile over the whole corpus: the best of every distinct score) and its
// normalisation against the null detector and a perfect one.
//
// Layout (NAB's): data files <data>/<category>/<name>.csv (timestamp,value); labels JSON
// {"<category>/<name>.csv": [[start, end], ...]}; results <results>/<detector>/<category>/<detector>_<name>.csv
// with at least the columns timestamp and anomaly_score.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace iotpipe::nab {

struct CostMatrix {
  double tp = 1.0, fp = 0.11, fn = 1.0;
};
struct Profile {
  std::string name;
  CostMatrix cost;
};
// standard, reward_low_FP_rate, reward_low_FN_rate (NAB's config/profiles.json).
const std::vector<Profile>& Profiles();

constexpr double kProbationPercent = 0.15;

struct Window {
  int64_t start_us = 0, end_us = 0;
};
using WindowMap = std::map<std::string, std::vector<Window>>;  // relative path -> windows

// A file's anomaly scores (one per row, in time order) and its windows.
struct FileScores {
  std::string rel_path;  // "<category>/<name>.csv"
  std::vector<int64_t> ts_us;
  std::vector<double> scores;
  std::vector<Window> windows;
};

// A univariate NAB data file.
struct Series {
  std::string rel_path;
  std::vector<int64_t> ts_us;
  std::vector<double> values;
};

// Scaled sigmoid S(y) = 2 / (1 + exp(5y)) - 1, and -1 for y >= 3 (sweeper.py).
double ScaledSigmoid(double y);
// min(floor(0.15 * rows), 750).
int64_t ProbationLength(int64_t rows, double percent = kProbationPercent);

// One scored row: its anomaly score, its weighted contribution if detected ("sweep score"), and its window
// (global id, or kNoWindow outside every window, or kProbation in the probation period).
struct AnomalyPoint {
  static constexpr int32_t kNoWindow = -1;
  static constexpr int32_t kProbation = -2;
  double score;
  double sweep;
  int32_t window;
};
struct ThresholdScore {
  double threshold = 0, score = 0;
  int64_t tp = 0, tn = 0, fp = 0, fn = 0;
};

// sweeper.calcSweepScore for one file. Window ids are first_window_id, first_window_id + 1, ... in the order
// the file's windows are entered; *next_window_id receives the id after the last one used.
Result<std::vector<AnomalyPoint>> CalcSweepScore(const FileScores& f, const CostMatrix& cost, int32_t first_window_id,
                                                 int32_t* next_window_id);
// sweeper.calcScoreByThreshold: the score at every distinct anomaly score (highest first), starting at 1.1
// (nothing detected). Each entry counts the rows whose score is >= its threshold as detections.
std::vector<ThresholdScore> CalcScoreByThreshold(std::vector<AnomalyPoint> points, const CostMatrix& cost);

struct CorpusScore {
  double threshold = 0;
  double raw = 0;          // sum of the files' raw scores
  double null_raw = 0;     // raw score of a detector that detects nothing
  double perfect_raw = 0;  // number of windows * tpWeight
  double normalized = 0;   // 100 * (raw - null) / (perfect - null)
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
};

// Raw corpus score at a fixed threshold (sweeper.scoreDataSet summed over files), normalised.
Result<CorpusScore> ScoreCorpus(const std::vector<FileScores>& files, const CostMatrix& cost, double threshold);
// The threshold optimiser: the best threshold over the whole corpus (ties: the highest threshold), scored.
Result<CorpusScore> OptimizeAndScore(const std::vector<FileScores>& files, const CostMatrix& cost);

// I/O.
Result<WindowMap> LoadWindows(const std::string& labels_json);
// Reads "<data>/<category>/<name>.csv" files (sorted by relative path).
Result<std::vector<std::string>> ListCorpus(const std::string& data_dir);
Result<Series> ReadSeries(const std::string& data_dir, const std::string& rel_path);
// Reads a results file (columns timestamp and anomaly_score, any others ignored) for rel_path.
Result<FileScores> ReadResultsFile(const std::string& path, const std::string& rel_path);
// Reads every <results_detector_dir>/<category>/<prefix>_<name>.csv and attaches its windows (files absent from
// the labels are an error). The prefix is the detector name (NAB splits the file name on its first '_').
Result<std::vector<FileScores>> ReadResultsDir(const std::string& detector_dir, const WindowMap& windows);
// Writes timestamp,value,anomaly_score atomically.
Status WriteResultsFile(const std::string& path, const Series& s, const std::vector<double>& scores);
// NAB's timestamp format: "2014-07-01 00:00:00".
std::string FormatNabTime(int64_t us);

}  // namespace iotpipe::nab
