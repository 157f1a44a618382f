#include "detect/pca.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

namespace iotpipe {
namespace {

TEST(Pca, SymmetricEigenOfAKnownMatrix) {
  // [[2,1],[1,2]]: eigenvalues 3 and 1, eigenvectors (1,1)/√2 and (1,-1)/√2.
  std::vector<double> vals, vecs;
  SymmetricEigen({2, 1, 1, 2}, 2, &vals, &vecs);
  EXPECT_NEAR(vals[0], 3.0, 1e-9);
  EXPECT_NEAR(vals[1], 1.0, 1e-9);
  EXPECT_NEAR(std::fabs(vecs[0]), std::sqrt(0.5), 1e-9);
  EXPECT_NEAR(vecs[0] * vecs[1], 0.5, 1e-9);
}

// Three channels: b follows a, c is independent noise. Breaking the a-b relation shows in Q and is
// attributed to a and b; a normal row is below the limits.
TEST(Pca, DetectsABrokenCorrelationAndAttributesIt) {
  std::mt19937 rng(7);
  std::normal_distribution<double> n01(0, 1);
  std::vector<std::vector<double>> train;
  for (int i = 0; i < 400; i++) {
    double a = n01(rng);
    train.push_back({a, 2 * a + 0.05 * n01(rng), 10 + n01(rng)});
  }
  PcaDetector pca;
  ASSERT_TRUE(pca.Fit(train).ok());
  EXPECT_GE(pca.components(), 1u);
  std::vector<double> normal{0.5, 1.0, 10.2}, broken{1.0, -2.0, 10.0}, attr;
  EXPECT_LT(pca.Severity(normal.data(), nullptr), 1.0);
  EXPECT_GT(pca.Severity(broken.data(), &attr), 5.0);
  ASSERT_EQ(attr.size(), 3u);
  EXPECT_GT(attr[0] + attr[1], 0.8);
  EXPECT_NEAR(attr[0] + attr[1] + attr[2], 1.0, 1e-9);
  // Streaming: the smoothed severity rises over a persistent fault.
  double st = 0, last = 0;
  for (int i = 0; i < 30; i++) last = pca.Update(&st, broken.data(), nullptr);
  EXPECT_GT(last, 1.0);
  EXPECT_EQ(PcaDetector::state_bytes(), sizeof(double));
}

TEST(Pca, BadTrainingDataIsAnError) {
  PcaDetector pca;
  EXPECT_FALSE(pca.Fit({}).ok());
  EXPECT_FALSE(pca.Fit({{1, 2}, {3, 4}}).ok());       // not more rows than channels
  EXPECT_FALSE(pca.Fit({{1, 2}, {3}, {4, 5}}).ok());  // ragged
}

}  // namespace
}  // namespace iotpipe
