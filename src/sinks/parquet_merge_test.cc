// Merging Parquet files by copying row groups: the merged file reads back as the inputs, in order,
// for files of the native writer and of DuckDB; bad inputs are refused with an error.
#include "sinks/parquet_merge.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "core/dictionaries.h"
#include "core/duck.h"
#include "core/fsutil.h"
#include "sinks/parquet_store.h"
#include "sinks/parquet_writer.h"

namespace fs = std::filesystem;

namespace iotpipe {
namespace {

const int64_t kT0 = 1732406400000000LL;  // 2024-11-24T00:00:00Z

class ParquetMergeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("iotpipe_pqm_" + std::to_string(getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    dicts.models.Intern("baseline-v1");
    auto d = Duck::Open();
    ASSERT_TRUE(d.ok());
    db = std::move(d.value());
  }
  void TearDown() override { fs::remove_all(dir); }

  // n readings from t0 (sensor ids depend on `salt`, so each file has its own dictionary).
  ReadingColumns Readings(size_t n, int64_t t0, int salt) {
    ReadingBatch b;
    for (size_t i = 0; i < n; i++) {
      uint32_t sid = dicts.sensors.Intern("s" + std::to_string(salt) + "_" + std::to_string(i % 37));
      uint16_t ty = i % 11 == 0 ? static_cast<uint16_t>(dicts.types.Intern("spike")) : ReadingBatch::kNoType;
      b.Push(sid, t0 + static_cast<int64_t>(i) * 1000, static_cast<double>(i) * 0.25 + salt, i % 11 == 0, ty);
      b.score.back() = static_cast<float>(i % 100) / 100.f;
      b.predicted.back() = i % 7 == 0;
    }
    b.processing_ts_us = t0 + 17;
    ReadingColumns c;
    c.AppendRange(b, 0, b.size());
    return c;
  }
  std::string WriteNative(const std::string& name, const ReadingColumns& c, size_t group_rows) {
    ParquetWriterOptions o;
    o.row_group_rows = group_rows;
    ParquetWriter w(o);
    std::string path = (dir / name).string();
    EXPECT_TRUE(w.WriteReadings(path, c, dicts.sensors, dicts.types, dicts.models).ok());
    return path;
  }
  static std::string List(const std::vector<std::string>& files) {
    std::string l;
    for (auto& f : files) l += (l.empty() ? "" : ", ") + SqlQuote(f);
    return "read_parquet([" + l + "], hive_partitioning = false)";
  }
  int64_t Int(const std::string& sql) {
    auto t = db->Query(sql);
    EXPECT_TRUE(t.ok()) << t.status().message() << "\n" << sql;
    return t.ok() && !t->rows.empty() ? t->Int() : -1;
  }
  // Every row, in file order, as text.
  std::vector<std::string> Rows(const std::string& src) {
    auto t = db->Query("SELECT * FROM " + src);
    EXPECT_TRUE(t.ok()) << t.status().message();
    std::vector<std::string> out;
    for (size_t r = 0; t.ok() && r < t->rows.size(); r++) {
      std::string line;
      for (size_t c = 0; c < t->columns.size(); c++) line += (t->rows[r][c] ? *t->rows[r][c] : "NULL") + "|";
      out.push_back(line);
    }
    return out;
  }
  void ExpectSameRowsInOrder(const std::vector<std::string>& inputs, const std::string& merged) {
    auto want = Rows(List(inputs));
    auto got = Rows(List({merged}));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); i++) ASSERT_EQ(got[i], want[i]) << "row " << i;
  }

  fs::path dir;
  Dictionaries dicts;
  std::unique_ptr<Duck> db;
};

TEST_F(ParquetMergeTest, NativeFilesMergeWithRowGroupsStatisticsAndOrderKept) {
  std::vector<std::string> in = {WriteNative("a.parquet", Readings(2500, kT0, 1), 1000),
                                 WriteNative("b.parquet", Readings(1, kT0 + 5000000000LL, 2), 1000),
                                 WriteNative("c.parquet", Readings(1000, kT0 + 9000000000LL, 3), 1000)};
  std::string out = (dir / "m.parquet").string();
  uint64_t bytes = 0;
  Status s = MergeParquetFiles(Env::Default(), in, out, &bytes);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(bytes, fs::file_size(out));
  auto info = ReadParquetInfo(out);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->rows, 3501);
  EXPECT_EQ(info->row_groups, 3 + 1 + 1);
  EXPECT_EQ(info->schema, ReadParquetInfo(in[0])->schema);
  ExpectSameRowsInOrder(in, out);
  // Per-row-group statistics moved with their row groups: min/max of each group are its own.
  EXPECT_EQ(Int("SELECT count(*) FROM parquet_metadata(" + SqlQuote(out) + ")"), 5 * 9);
  EXPECT_EQ(Int("SELECT count(DISTINCT row_group_id) FROM parquet_metadata(" + SqlQuote(out) + ")"), 5);
  EXPECT_EQ(Int("SELECT (4 * max(stats_max_value::DOUBLE))::BIGINT FROM parquet_metadata(" + SqlQuote(out) +
                ") WHERE path_in_schema = 'value' AND row_group_id = 4"),
            4 * 3 + 999);  // the last file's values: 3 + i / 4
  // Filters that use the statistics (row-group pruning) see the right rows.
  EXPECT_EQ(Int("SELECT count(*) FROM " + List({out}) + " WHERE value = 2"), 2);  // a: i = 4, b: i = 0
  EXPECT_EQ(Int("SELECT count(*) FROM " + List({out}) + " WHERE sensor_id = 's3_5'"),
            Int("SELECT count(*) FROM " + List(in) + " WHERE sensor_id = 's3_5'"));
  // A merged file merges again.
  std::string out2 = (dir / "m2.parquet").string();
  ASSERT_TRUE(MergeParquetFiles(Env::Default(), {out, in[1]}, out2).ok());
  EXPECT_EQ(ReadParquetInfo(out2)->rows, 3502);
  ExpectSameRowsInOrder({out, in[1]}, out2);
}

TEST_F(ParquetMergeTest, DuckdbWrittenFilesAndDeadLettersMergeToo) {
  std::vector<std::string> in;
  for (int k = 0; k < 3; k++) {
    std::string f = (dir / ("d" + std::to_string(k) + ".parquet")).string();
    ASSERT_TRUE(db->Exec("COPY (SELECT 's' || (i % 13) AS sensor_id, TIMESTAMP '2024-11-24' + to_microseconds(i) AS "
                         "timestamp, i * 0.5 AS value, CASE WHEN i % 3 = 0 THEN NULL ELSE 'x' || i END AS t "
                         "FROM range(" +
                         std::to_string(k * 1000) + ", " + std::to_string(k * 1000 + 700 + k) + ") r(i)) TO " +
                         SqlQuote(f) + " (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 256)")
                    .ok());
    in.push_back(f);
  }
  std::string out = (dir / "m.parquet").string();
  Status s = MergeParquetFiles(Env::Default(), in, out);
  ASSERT_TRUE(s.ok()) << s.message();
  ExpectSameRowsInOrder(in, out);
  EXPECT_EQ(ReadParquetInfo(out)->rows, 700 + 701 + 702);

  DeadLetterColumns d;
  for (int i = 0; i < 50; i++) {
    d.received_ts_us.push_back(kT0 + i);
    d.reason.push_back("invalid_json: " + std::to_string(i));
    d.raw.push_back(std::string("{\0\xff", 3) + std::to_string(i));
    d.source.push_back("embedded");
    d.has_origin.push_back(i % 2);
    d.kafka_partition.push_back(i % 3);
    d.kafka_offset.push_back(i);
  }
  ParquetWriter w;
  std::string d1 = (dir / "dl1.parquet").string(), d2 = (dir / "dl2.parquet").string();
  ASSERT_TRUE(w.WriteDeadLetters(d1, d).ok());
  ASSERT_TRUE(w.WriteDeadLetters(d2, d).ok());
  std::string dout = (dir / "dl.parquet").string();
  ASSERT_TRUE(MergeParquetFiles(Env::Default(), {d1, d2}, dout).ok());
  ExpectSameRowsInOrder({d1, d2}, dout);
}

TEST_F(ParquetMergeTest, OtherSchemasAndMalformedFilesAreRefusedWithAnError) {
  std::string a = WriteNative("a.parquet", Readings(300, kT0, 1), 100);
  std::string other = (dir / "other.parquet").string();
  ASSERT_TRUE(db->Exec("COPY (SELECT 1 AS x) TO " + SqlQuote(other) + " (FORMAT parquet)").ok());
  Status s = MergeParquetFiles(Env::Default(), {a, other}, (dir / "m.parquet").string());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("schema differs"), std::string::npos) << s.message();
  EXPECT_FALSE(MergeParquetFiles(Env::Default(), {}, (dir / "m.parquet").string()).ok());
  EXPECT_FALSE(
      MergeParquetFiles(Env::Default(), {(dir / "missing.parquet").string()}, (dir / "m.parquet").string()).ok());

  std::string good;
  {
    std::ifstream f(a, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write = [&](const std::string& name, const std::string& content) {
    std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  };
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"empty", ""},
      {"short", "PAR1PAR1"},
      {"nomagic", "XXXX" + good.substr(4)},
      {"truncated", good.substr(0, good.size() - 3)},
      {"hugelen", good.substr(0, good.size() - 8) + std::string("\xff\xff\xff\x7f", 4) + "PAR1"},
      {"text", std::string("PAR1 this is not a footer at all ") + std::string("\x10\0\0\0", 4) + "PAR1"},
  };
  for (auto& [name, content] : bad) {
    std::string p = write(name, content);
    EXPECT_FALSE(ReadParquetInfo(p).ok()) << name;
    EXPECT_FALSE(MergeParquetFiles(Env::Default(), {a, p}, (dir / "m.parquet").string()).ok()) << name;
  }
  // Random corruption of the footer: an error or a file, never a crash or a hang.
  uint32_t flen;
  std::memcpy(&flen, good.data() + good.size() - 8, 4);
  std::mt19937 rng(7);
  for (int k = 0; k < 300; k++) {
    std::string c = good;
    for (int j = 0; j < 3; j++) {
      size_t at = c.size() - 8 - flen + rng() % flen;
      c[at] = static_cast<char>(rng());
    }
    std::string p = write("fuzz.parquet", c);
    (void)ReadParquetInfo(p);
    (void)MergeParquetFiles(Env::Default(), {p, a}, (dir / "m.parquet").string());
  }
}

// The store compacts closed hours by merging row groups (no re-encoding) once files are large
// enough, and keeps the manifest protocol; small files are still re-encoded through DuckDB.
TEST_F(ParquetMergeTest, StoreCompactionMergesRowGroupsAndKeepsEveryRow) {
  for (size_t min_rows : {size_t{0}, size_t{1} << 30}) {
    fs::path data = dir / ("data" + std::to_string(min_rows));
    StoreOptions o;
    o.data_dir = data.string();
    o.compact_merge_min_rows = min_rows;
    auto st = ParquetStore::Open(o, &dicts.sensors, &dicts.types, &dicts.models);
    ASSERT_TRUE(st.ok()) << st.status().message();
    auto& store = *st;
    for (int i = 0; i < 4; i++) {
      ProcessedBatch b;
      ReadingColumns c = Readings(500, kT0 + i * 500 * 1000LL, i);
      for (size_t r = 0; r < c.size(); r++) b.readings.Push(c.sensor[r], c.ts_us[r], c.value[r], c.gt[r], c.type[r]);
      b.readings.processing_ts_us = kT0;
      ASSERT_TRUE(store->Append(b).ok());
      ASSERT_TRUE(store->Flush().ok());
    }
    ProcessedBatch late;
    late.readings.Push(dicts.sensors.Intern("late"), kT0 + 3 * 3600 * 1000000LL, 1.0, false, ReadingBatch::kNoType);
    ASSERT_TRUE(store->Append(late).ok());
    ASSERT_TRUE(store->Flush().ok());
    fs::path hour = data / "sensor_readings" / "date=2024-11-24" / "hour=00";
    std::vector<std::string> before;
    for (auto& e : fs::directory_iterator(hour)) before.push_back(e.path().string());
    std::sort(before.begin(), before.end());
    ASSERT_EQ(before.size(), 4u);
    auto want = Rows(List(before));
    ASSERT_TRUE(store->CompactClosed().ok());
    EXPECT_EQ(store->stats().compactions, 1u);
    std::vector<std::string> after;
    for (auto& e : fs::directory_iterator(hour)) after.push_back(e.path().string());
    ASSERT_EQ(after.size(), 1u) << "one file, no manifest or temporary left";
    EXPECT_NE(after[0].find("-c"), std::string::npos);
    auto info = ReadParquetInfo(after[0]);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->rows, 2000);
    // Merged: the four files' row groups; re-encoded: one row group.
    EXPECT_EQ(info->row_groups, min_rows == 0 ? 4 : 1);
    auto got = Rows(List(after));
    EXPECT_EQ(got, want);
  }
}

}  // namespace
}  // namespace iotpipe
