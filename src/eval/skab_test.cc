// Reading SKAB experiment files (eval/skab.h).
#include "eval/skab.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace iotpipe {
namespace {

TEST(Skab, ReadExperimentRejectsBadFiles) {
  std::string dir = ::testing::TempDir() + "/skab_bad";
  std::filesystem::create_directories(dir);
  { std::ofstream(dir + "/a.csv") << "datetime;x;y\n2020-01-01 00:00:00;1;2\n"; }
  EXPECT_FALSE(skab::ReadExperiment(dir + "/a.csv").ok());  // no anomaly column
  {
    std::ofstream f(dir + "/b.csv");
    f << "datetime;x;anomaly;changepoint\n";
    for (int i = 0; i < 500; i++) f << "2020-01-01 00:00:00;" << (i == 7 ? "oops" : "1") << ";0;0\n";
  }
  auto r = skab::ReadExperiment(dir + "/b.csv");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(":9:"), std::string::npos) << r.status().message();
  EXPECT_FALSE(skab::ReadExperiment(dir + "/missing.csv").ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace iotpipe
