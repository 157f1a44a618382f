#include "eval/nab.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fsutil.h"
#include "eval/datasets.h"

namespace iotpipe::nab {
namespace {

TEST(NabScorer, ScaledSigmoid) {
  EXPECT_NEAR(ScaledSigmoid(-1.0), 0.98661, 1e-5);
  EXPECT_NEAR(ScaledSigmoid(-0.5), 0.84828, 1e-5);
  EXPECT_NEAR(ScaledSigmoid(0.0), 0.0, 1e-12);
  EXPECT_NEAR(ScaledSigmoid(1.0), -0.98661, 1e-5);
  EXPECT_EQ(ScaledSigmoid(3.0), -1.0);
  EXPECT_EQ(ProbationLength(4032), 604);
  EXPECT_EQ(ProbationLength(22695), 750);
}

// A hand-checkable file: 100 rows (probation 15), one window over rows [40, 49].
FileScores Toy(std::vector<int> detections) {
  FileScores f;
  f.rel_path = "toy/toy.csv";
  for (int i = 0; i < 100; i++) {
    f.ts_us.push_back(int64_t{i} * 60'000'000);
    f.scores.push_back(0.0);
  }
  for (int d : detections) f.scores[d] = 1.0;
  f.windows.push_back({f.ts_us[40], f.ts_us[49]});
  return f;
}

TEST(NabScorer, HandComputedCases) {
  const CostMatrix std_cost{1.0, 0.11, 1.0};
  // Nothing detected: -fn; normalised 0.
  auto none = ScoreCorpus({Toy({})}, std_cost, 0.5);
  ASSERT_TRUE(none.ok());
  EXPECT_DOUBLE_EQ(none->raw, -1.0);
  EXPECT_DOUBLE_EQ(none->normalized, 0.0);
  // Detection at the window's left edge: full tp weight (y = -(49-40+1)/10 = -1).
  auto left = ScoreCorpus({Toy({40})}, std_cost, 0.5);
  ASSERT_TRUE(left.ok());
  EXPECT_NEAR(left->raw, 1.0, 1e-12);
  EXPECT_NEAR(left->normalized, 100.0, 1e-9);
  // Only the first detection in a window counts; later ones in it cost nothing.
  auto twice = ScoreCorpus({Toy({40, 45, 48})}, std_cost, 0.5);
  EXPECT_NEAR(twice->raw, 1.0, 1e-12);
  // Half-way in: S(-0.5) / S(-1).
  auto mid = ScoreCorpus({Toy({45})}, std_cost, 0.5);
  EXPECT_NEAR(mid->raw, ScaledSigmoid(-0.5) / ScaledSigmoid(-1.0), 1e-12);
  // A false positive before any window costs -fp; one during probation costs nothing.
  auto fp = ScoreCorpus({Toy({5, 20})}, std_cost, 0.5);
  EXPECT_NEAR(fp->raw, -1.0 - 0.11, 1e-12);
  EXPECT_EQ(fp->fp, 1);
  // A false positive 2 rows after the window: S(2 / 9) * fp.
  auto after = ScoreCorpus({Toy({51})}, std_cost, 0.5);
  EXPECT_NEAR(after->raw, -1.0 + ScaledSigmoid(2.0 / 9.0) * 0.11, 1e-12);
  // The optimiser sees the threshold 1.0 beats "nothing".
  auto opt = OptimizeAndScore({Toy({40, 70})}, std_cost);
  ASSERT_TRUE(opt.ok());
  EXPECT_DOUBLE_EQ(opt->threshold, 1.0);
  EXPECT_GT(opt->normalized, 90.0);
}

TEST(NabScorer, BadInputIsAnError) {
  FileScores f = Toy({});
  f.windows[0].end_us += 1;  // not a row
  EXPECT_FALSE(ScoreCorpus({f}, CostMatrix{}, 0.5).ok());
  EXPECT_FALSE(LoadWindows("/nonexistent/labels.json").ok());
  std::string dir = testing::TempDir() + "/nab_bad";
  std::filesystem::create_directories(dir + "/cat");
  ASSERT_TRUE(WriteFileAtomic(dir + "/labels.json", "{\"cat/x.csv\": [[\"2014-01-01\"]]}").ok());
  EXPECT_FALSE(LoadWindows(dir + "/labels.json").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/cat/x.csv", "timestamp,value\n2014-01-01 00:00:00,abc\n").ok());
  EXPECT_FALSE(ReadSeries(dir, "cat/x.csv").ok());
  std::filesystem::remove_all(dir);
}

// The official scorer's results on the development subset, for two published detectors.
TEST(NabScorer, ReproducesReferenceScores) {
  const std::string root = SharedDatasetsDir() + "/nab";
  if (!std::filesystem::exists(root + "/reference/expected_scores.json"))
    GTEST_SKIP() << "NAB reference data not found under " << root;
  auto windows = LoadWindows(root + "/labels/combined_windows.json");
  ASSERT_TRUE(windows.ok()) << windows.status().message();
  auto text = ReadFile(root + "/reference/expected_scores.json");
  ASSERT_TRUE(text.ok());
  auto expected = nlohmann::json::parse(*text);
  for (std::string det : {"numenta", "windowedGaussian"}) {
    auto files = ReadResultsDir(root + "/reference/" + det, *windows);
    ASSERT_TRUE(files.ok()) << files.status().message();
    EXPECT_EQ(files->size(), 26u);
    for (const auto& prof : Profiles()) {
      const auto& e = expected[det][prof.name];
      const double thr = e["threshold"].get<double>(), want = e["score"].get<double>();
      auto at = ScoreCorpus(*files, prof.cost, thr);
      ASSERT_TRUE(at.ok()) << at.status().message();
      EXPECT_NEAR(at->normalized, want, 0.005) << det << " " << prof.name;
      auto opt = OptimizeAndScore(*files, prof.cost);
      ASSERT_TRUE(opt.ok());
      EXPECT_GE(opt->normalized, want - 1e-6) << det << " " << prof.name;
    }
  }
}

}  // namespace
}  // namespace iotpipe::nab
