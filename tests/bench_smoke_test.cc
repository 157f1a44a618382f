// `iotpipe bench --quick` runs in CI as a smoke test: it must finish and report every key that
// comparison scripts rely on. No speed threshold is asserted here (machines are noisy): figures only.
#include <fstream>

#include "test_util.h"

using iotpipe::testing::Bin;
using iotpipe::testing::Sh;
using iotpipe::testing::TempDir;

TEST(BenchSmoke, QuickRunReportsTheStableKeys) {
  TempDir d("bench_smoke");
  std::string out = d.str() + "/bench.json";
  auto r = Sh(Bin() + " bench --quick --json " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream f(out);
  auto j = nlohmann::json::parse(f);
  for (const char* k : {"e2e_baseline_events_per_s", "e2e_lstm_events_per_s", "lstm_windows_per_s",
                        "baseline_state_bytes_per_sensor", "p99_latency_s_at_100k", "parse_per_s", "parquet_rows_per_s",
                        "query_day_s", "events_per_s_1_core", "events_per_s_2_cores"}) {
    ASSERT_TRUE(j.contains(k)) << k;
    EXPECT_GT(j[k].get<double>(), 0) << k;
  }
  EXPECT_TRUE(j["machine"].contains("cpu"));
  EXPECT_LE(j["baseline_state_bytes_per_sensor"].get<double>(), 256);
  std::fprintf(stderr, "%s\n", r.err.c_str());  // the table, for the CI log
}
