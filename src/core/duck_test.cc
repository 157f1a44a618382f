// Readers tolerate bad files and see committed compactions (issue 14, findings 2 and 3).
#include "core/duck.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/tables.h"

namespace iotpipe {
namespace {

namespace fs = std::filesystem;

class DataViews : public ::testing::Test {
 protected:
  void SetUp() override {
    root = fs::temp_directory_path() / ("iotpipe-views-" + std::to_string(getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root);
    hour = root / "sensor_readings" / "date=2024-11-24" / "hour=00";
    fs::create_directories(hour);
    auto d = Duck::Open();
    ASSERT_TRUE(d.ok());
    db = std::move(d.value());
    ASSERT_TRUE(db->Exec("CREATE TABLE r (" + kReadingsSchema + ")").ok());
  }
  void TearDown() override { fs::remove_all(root); }
  // Writes n readings of sensor `s` as one Parquet file (as the pipeline's files look to DuckDB).
  void Write(const fs::path& f, int n, const std::string& s) {
    ASSERT_TRUE(db->Exec("DELETE FROM r").ok());
    ASSERT_TRUE(db->Exec("INSERT INTO r SELECT '" + s +
                         "', TIMESTAMP '2024-11-24 00:00:00' + INTERVAL (i) SECOND, i, "
                         "false, NULL, now()::TIMESTAMP, false, 0, 'v1' FROM range(" +
                         std::to_string(n) + ") t(i)")
                    .ok());
    ASSERT_TRUE(db->Exec("COPY r TO " + SqlQuote(f.string()) + " (FORMAT parquet)").ok());
  }
  int64_t Count() {
    auto q = Duck::Open();
    EXPECT_TRUE(q.ok());
    Status s = CreateDataViews(**q, root.string());
    EXPECT_TRUE(s.ok()) << s.message();
    auto t = (*q)->Query("SELECT count(*) FROM sensor_readings");
    EXPECT_TRUE(t.ok()) << t.status().message();
    return t.ok() ? t->Int() : -1;
  }
  fs::path root, hour;
  std::unique_ptr<Duck> db;
};

TEST_F(DataViews, DamagedAndForeignFilesAreSkippedNotFatal) {
  Write(hour / "good.parquet", 100, "a");
  const int64_t skipped0 = SkippedDataFiles();
  std::ofstream(hour / "zero.parquet").close();                                // zero length
  std::ofstream(hour / "stray.parquet") << "not parquet at all, just text\n";  // foreign bytes
  {
    std::ifstream in(hour / "good.parquet", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream(hour / "truncated.parquet", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
    std::string bad_footer = bytes;
    for (size_t i = bad_footer.size() - 40; i < bad_footer.size() - 8; i++) bad_footer[i] = '\xff';  // Thrift garbage
    std::ofstream(hour / "footer.parquet", std::ios::binary) << bad_footer;
    std::string bad_len = bytes;
    bad_len[bad_len.size() - 6] = '\x7f';  // footer length beyond the file
    std::ofstream(hour / "length.parquet", std::ios::binary) << bad_len;
  }
  ASSERT_TRUE(db->Exec("COPY (SELECT 1 AS x, 'y' AS z) TO " + SqlQuote((hour / "foreign.parquet").string()) +
                       " (FORMAT parquet)")
                  .ok());
  EXPECT_EQ(Count(), 100);
  EXPECT_EQ(SkippedDataFiles() - skipped0, 6);  // zero, stray, truncated, footer, length, foreign
  EXPECT_EQ(Count(), 100);                      // a second look reads no footer again and skips the same
  EXPECT_EQ(SkippedDataFiles() - skipped0, 6);
  auto files = ReadableDataFiles(root.string(), ReadingsTable());
  ASSERT_GE(files.size(), 1u);
  for (const auto& f : files) {
    const std::string name = fs::path(f).filename().string();
    EXPECT_EQ(name, "good.parquet");
  }
}

TEST_F(DataViews, ACommittedCompactionHidesItsInputs) {
  Write(hour / "in1.parquet", 30, "a");
  Write(hour / "in2.parquet", 20, "b");
  // A compaction whose output is not yet committed: readers see the inputs only.
  std::ofstream(hour / ".compact-out.parquet.123.manifest") << "out.parquet\nin1.parquet\nin2.parquet\n";
  EXPECT_EQ(Count(), 50);
  // Output committed, inputs not yet removed (a kill at the unlink): readers see the output only.
  Write(hour / "out.parquet", 50, "c");
  EXPECT_EQ(Count(), 50);
  auto t = Duck::Open();
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE(CreateDataViews(**t, root.string()).ok());
  auto d = (*t)->Query("SELECT count(DISTINCT sensor_id), min(sensor_id) FROM sensor_readings");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->Int(0, 0), 1);
  EXPECT_EQ(d->Str(0, 1), "c");
}

// Long statements report progress (issue 19: evaluate over 29M rows printed nothing for minutes);
// results, multiple statements and errors are as without it.
TEST(DuckProgress, ReportsWhileRunningAndKeepsResultsAndErrors) {
  auto db = Duck::Open("", 2);
  ASSERT_TRUE(db.ok());
  std::vector<double> seen;
  ASSERT_TRUE((*db)->SetProgress([&](double pct, int, double) { seen.push_back(pct); }, 0.001, 0.001).ok());
  auto t = (*db)->Query(
      "CREATE TEMP TABLE x AS SELECT 7 AS v; "
      "SELECT count(DISTINCT hash(i) % 5000000) AS n, max(v) AS v FROM range(3000000) t(i), x");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_GT(t->Int(0, 0), 2000000);
  EXPECT_EQ(t->Int(0, 1), 7);
  ASSERT_FALSE(seen.empty()) << "no progress reported during a statement of a few hundred ms";
  for (double p : seen) {  // DuckDB's estimate, or -1 where it has none (it has none for some plans)
    EXPECT_GE(p, -1);
    EXPECT_LE(p, 100);
  }
  auto bad = (*db)->Query("SELECT * FROM no_such_table");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().IsInvalidArgument()) << bad.status().message();
  EXPECT_FALSE((*db)->Exec("SELEC 1").ok());
  ASSERT_TRUE((*db)->SetProgress(nullptr).ok());
  EXPECT_EQ((*db)->Query("SELECT 41 + 1")->Int(), 42);
}

}  // namespace
}  // namespace iotpipe
