// The native Parquet writer against DuckDB's: the same rows written by both read back identically.
#include "sinks/parquet_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/dictionaries.h"
#include "core/duck.h"
#include "sinks/parquet_store.h"

namespace fs = std::filesystem;

namespace iotpipe {
namespace {

const int64_t kT0 = 1732406400000000LL;  // 2024-11-24T00:00:00Z

class ParquetWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("iotpipe_pqw_" + std::to_string(getpid()) + "_" +
                                       ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    dicts.models.Intern("baseline-v1");
    dicts.models.Intern("lstm-ae-v2");
    auto d = Duck::Open();
    ASSERT_TRUE(d.ok());
    db = std::move(d.value());
  }
  void TearDown() override { fs::remove_all(dir); }

  // Readings with the awkward cases: unicode ids, NULL types, extreme and special doubles.
  ReadingBatch Readings(size_t n, int64_t t0 = kT0) {
    const std::vector<std::string> ids = {"sensor_0", "датчик-7", "传感器_😀", "", "s'quote\"d", "s\\back"};
    const std::vector<double> special = {std::numeric_limits<double>::max(),
                                         std::numeric_limits<double>::lowest(),
                                         std::numeric_limits<double>::denorm_min(),
                                         -0.0,
                                         std::numeric_limits<double>::infinity(),
                                         -std::numeric_limits<double>::infinity(),
                                         1e-300,
                                         -123456.789};
    ReadingBatch b;
    for (size_t i = 0; i < n; i++) {
      uint32_t sid = dicts.sensors.Intern(i % 11 == 0 ? ids[(i / 11) % ids.size()] : "s" + std::to_string(i % 97));
      uint16_t ty =
          i % 13 == 0 ? static_cast<uint16_t>(dicts.types.Intern(i % 2 ? "spike" : "stuck")) : ReadingBatch::kNoType;
      double v = i % 17 == 0 ? special[(i / 17) % special.size()] : 20.0 + static_cast<double>(i % 1000) * 0.001;
      b.Push(sid, t0 + static_cast<int64_t>(i) * 1000, v, i % 13 == 0, ty);
      b.score.back() = static_cast<float>(i % 100) / 100.f;
      b.predicted.back() = i % 7 == 0;
      b.model.back() = static_cast<uint16_t>(i % 5 == 0 ? 1 : 0);
    }
    b.processing_ts_us = t0 + 999;
    return b;
  }
  static ReadingColumns Columns(const ReadingBatch& b) {
    ReadingColumns c;
    c.AppendRange(b, 0, b.size());
    return c;
  }
  // Writes `b` with the given store writer into dir/<name>; returns the data dir.
  std::string Store(const std::string& name, const std::string& writer, const ProcessedBatch& b,
                    const std::string& topic = "") {
    StoreOptions o;
    o.data_dir = (dir / name).string();
    o.writer = writer;
    if (!topic.empty()) {  // named as the pipeline names the files of a Kafka source
      o.position_files = "kafka-" + topic;
      o.source_label = "kafka:" + topic;
    }
    auto s = ParquetStore::Open(o, &dicts.sensors, &dicts.types, &dicts.models);
    EXPECT_TRUE(s.ok()) << s.status().message();
    EXPECT_TRUE((*s)->Append(b).ok());
    EXPECT_TRUE((*s)->Flush().ok());
    return o.data_dir;
  }
  static std::string Glob(const std::string& p) {
    return "read_parquet(" + SqlQuote(p) + ", hive_partitioning = false)";
  }
  int64_t Int(const std::string& sql) {
    auto t = db->Query(sql);
    EXPECT_TRUE(t.ok()) << t.status().message() << "\n" << sql;
    return t.ok() && !t->rows.empty() ? t->Int() : -1;
  }
  // Rows of a that are not in b plus rows of b not in a (multiset difference both ways).
  int64_t Diff(const std::string& a, const std::string& b) {
    return Int("SELECT count(*) FROM ((SELECT * FROM " + a + " EXCEPT ALL SELECT * FROM " + b +
               ") UNION ALL (SELECT * FROM " + b + " EXCEPT ALL SELECT * FROM " + a + "))");
  }
  std::string Describe(const std::string& src) {
    auto t = db->Query("DESCRIBE SELECT * FROM " + src);
    EXPECT_TRUE(t.ok()) << t.status().message();
    std::string out;
    for (size_t r = 0; t.ok() && r < t->rows.size(); r++) out += t->Str(r, 0) + " " + t->Str(r, 1) + ", ";
    return out;
  }
  std::string Schema(const std::string& file) {
    auto t = db->Query("SELECT name, type, repetition_type, converted_type, logical_type FROM parquet_schema(" +
                       SqlQuote(file) + ") WHERE name <> 'duckdb_schema' ORDER BY name");
    EXPECT_TRUE(t.ok()) << t.status().message();
    std::string out;
    for (size_t r = 0; t.ok() && r < t->rows.size(); r++)
      for (size_t c = 0; c < t->columns.size(); c++) out += t->Str(r, c) + (c + 1 < t->columns.size() ? " " : "\n");
    return out;
  }
  static std::string OneFile(const std::string& d) {
    for (auto& e : fs::recursive_directory_iterator(d))
      if (e.path().extension() == ".parquet") return e.path().string();
    return "";
  }

  fs::path dir;
  Dictionaries dicts;
  std::unique_ptr<Duck> db;
};

TEST_F(ParquetWriterTest, SameReadingsReadBackIdenticallyFromBothWriters) {
  ProcessedBatch b;
  b.readings = Readings(5000);
  std::string native = Store("native", "native", b), duck = Store("duck", "duckdb", b);
  const std::string n = Glob(native + "/sensor_readings/**/*.parquet"),
                    d = Glob(duck + "/sensor_readings/**/*.parquet");
  EXPECT_EQ(Int("SELECT count(*) FROM " + n), 5000);
  EXPECT_EQ(Int("SELECT count(*) FROM " + d), 5000);
  EXPECT_EQ(Diff(n, d), 0);
  EXPECT_EQ(Describe(n), Describe(d));
  EXPECT_EQ(Schema(OneFile(native + "/sensor_readings")), Schema(OneFile(duck + "/sensor_readings")));
  // The awkward values survive: NULL types, unicode ids, infinities, the largest double.
  EXPECT_EQ(Int("SELECT count(*) FROM " + n + " WHERE anomaly_type IS NULL"),
            Int("SELECT count(*) FROM " + d + " WHERE anomaly_type IS NULL"));
  EXPECT_GT(Int("SELECT count(*) FROM " + n + " WHERE anomaly_type IS NULL"), 4000);
  EXPECT_GT(Int("SELECT count(*) FROM " + n + " WHERE sensor_id = '传感器_😀'"), 0);
  EXPECT_GT(Int("SELECT count(*) FROM " + n + " WHERE value = 'inf'::DOUBLE"), 0);
  EXPECT_GT(Int("SELECT count(*) FROM " + n + " WHERE value = 1.7976931348623157e308"), 0);
  // Through the data views too (hive partitions).
  auto v = Duck::Open();
  ASSERT_TRUE(CreateDataViews(**v, native).ok());
  auto t = (*v)->Query("SELECT count(*), count(DISTINCT sensor_id) FROM sensor_readings");
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ(t->Int(0, 0), 5000);
}

TEST_F(ParquetWriterTest, DeadLettersReadBackIdenticallyFromBothWriters) {
  ProcessedBatch b;
  b.dead.received_ts_us = kT0 + 42;
  for (int i = 0; i < 300; i++) {
    std::string raw = i % 3 == 0 ? std::string("{\"x\":\0\xff}", 8) : "not json " + std::to_string(i);
    b.dead.raw.push_back(raw);
    b.dead.reason.push_back(i % 2 ? "invalid JSON" : "missing field: sensor_id — ✗");
  }
  std::string native = Store("native", "native", b), duck = Store("duck", "duckdb", b);
  const std::string n = Glob(native + "/dead_letters/**/*.parquet"), d = Glob(duck + "/dead_letters/**/*.parquet");
  EXPECT_EQ(Int("SELECT count(*) FROM " + n), 300);
  EXPECT_EQ(Diff(n, d), 0);
  EXPECT_EQ(Describe(n), Describe(d));
  EXPECT_EQ(Schema(OneFile(native + "/dead_letters")), Schema(OneFile(duck + "/dead_letters")));
  EXPECT_EQ(Int("SELECT count(*) FROM " + n + " WHERE kafka_partition IS NULL AND source = 'embedded'"), 300);
  EXPECT_EQ(Int("SELECT count(*) FROM " + n + " WHERE octet_length(raw) = 8"), 100);

  // With Kafka origins: partition and offset columns set.
  ProcessedBatch k = b;
  for (int i = 0; i < 300; i++) k.dead.origins.push_back({i % 2, 1000 + i});
  std::string kn = Store("kn", "native", k, "topicA"), kd = Store("kd", "duckdb", k, "topicA");
  const std::string kn_g = Glob(kn + "/dead_letters/**/*.parquet"), kd_g = Glob(kd + "/dead_letters/**/*.parquet");
  EXPECT_EQ(Int("SELECT count(*) FROM " + kn_g + " WHERE source = 'kafka:topicA' AND kafka_offset >= 1000"), 300);
  EXPECT_EQ(Diff(kn_g, kd_g), 0);
}

TEST_F(ParquetWriterTest, EmptyOneRowAndManyRowGroups) {
  ParquetWriterOptions o;
  o.row_group_rows = 1000;
  ParquetWriter w(o);
  // Empty: a valid file with the schema and no rows.
  ReadingColumns empty;
  std::string f0 = (dir / "empty.parquet").string();
  uint64_t bytes = 0;
  ASSERT_TRUE(w.WriteReadings(f0, empty, dicts.sensors, dicts.types, dicts.models, &bytes).ok());
  EXPECT_EQ(bytes, fs::file_size(f0));
  EXPECT_EQ(Int("SELECT count(*) FROM " + Glob(f0)), 0);
  DeadLetterColumns no_dead;
  std::string fd = (dir / "empty_dead.parquet").string();
  ASSERT_TRUE(w.WriteDeadLetters(fd, no_dead).ok());
  EXPECT_EQ(Int("SELECT count(*) FROM " + Glob(fd)), 0);

  // One row, and 2,500 rows in row groups of 1,000, each compared with DuckDB's file.
  for (size_t n : {size_t{1}, size_t{2500}}) {
    ProcessedBatch b;
    b.readings = Readings(n);
    std::string f = (dir / ("n" + std::to_string(n) + ".parquet")).string();
    ASSERT_TRUE(w.WriteReadings(f, Columns(b.readings), dicts.sensors, dicts.types, dicts.models).ok());
    std::string duck = Store("duck" + std::to_string(n), "duckdb", b);
    EXPECT_EQ(Int("SELECT count(*) FROM " + Glob(f)), static_cast<int64_t>(n));
    EXPECT_EQ(Diff(Glob(f), Glob(duck + "/sensor_readings/**/*.parquet")), 0) << n;
    EXPECT_EQ(Describe(Glob(f)), Describe(Glob(f0)));
    EXPECT_EQ(Int("SELECT num_row_groups FROM parquet_file_metadata(" + SqlQuote(f) + ")"),
              static_cast<int64_t>((n + 999) / 1000));
  }
  // Also without compression.
  ParquetWriter plain(ParquetWriterOptions{"uncompressed", 1, 1000});
  ProcessedBatch b;
  b.readings = Readings(1500);
  std::string fu = (dir / "plain.parquet").string();
  ASSERT_TRUE(plain.WriteReadings(fu, Columns(b.readings), dicts.sensors, dicts.types, dicts.models).ok());
  std::string fz = (dir / "n2500.parquet").string();
  EXPECT_EQ(Diff(Glob(fu), "(SELECT * FROM " + Glob(fz) + " LIMIT 1500)"), 0);
  EXPECT_EQ(Int("SELECT count(*) FROM parquet_metadata(" + SqlQuote(fu) + ") WHERE compression <> 'UNCOMPRESSED'"), 0);
}

// Timestamps are DELTA_BINARY_PACKED and scores BYTE_STREAM_SPLIT: awkward sequences (int64
// extremes whose deltas wrap, runs, jumps, every length around the 128-value block and 32-value
// miniblock) and special floats read back from DuckDB exactly as DuckDB's own PLAIN file has them.
TEST_F(ParquetWriterTest, DeltaTimestampsAndSplitScoresReadBackExactly) {
  const int64_t big = std::numeric_limits<int64_t>::max(), small = std::numeric_limits<int64_t>::min();
  const std::vector<float> fs_ = {0.f,
                                  -0.f,
                                  1.f,
                                  std::numeric_limits<float>::max(),
                                  std::numeric_limits<float>::denorm_min(),
                                  std::numeric_limits<float>::infinity(),
                                  -std::numeric_limits<float>::infinity(),
                                  0.125f};
  for (size_t n : {size_t{1}, size_t{2}, size_t{33}, size_t{128}, size_t{129}, size_t{4097}}) {
    ProcessedBatch b;
    b.readings = Readings(n);
    uint64_t x = 12345;
    for (size_t i = 0; i < n; i++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      int64_t& ts = b.readings.ts_us[i];
      switch (i % 7) {
        case 0:
          ts = kT0 + static_cast<int64_t>(i) * 1000 + static_cast<int64_t>(x >> 45) - (1 << 18);
          break;
        case 1:
          ts = i % 3 ? big : small;
          break;  // the widest deltas: they wrap
        case 2:
          ts = static_cast<int64_t>(x);
          break;
        case 3:
          ts = i > 0 ? b.readings.ts_us[i - 1] : 0;
          break;  // a zero delta
        default:
          ts = kT0 - static_cast<int64_t>(i);
          break;  // decreasing
      }
      b.readings.score[i] = i % 5 == 0 ? fs_[(i / 5) % fs_.size()] : static_cast<float>(x >> 40) / 1e3f;
    }
    std::string native = Store("dn" + std::to_string(n), "native", b),
                duck = Store("dd" + std::to_string(n), "duckdb", b);
    const std::string a = Glob(native + "/sensor_readings/**/*.parquet"),
                      d = Glob(duck + "/sensor_readings/**/*.parquet");
    EXPECT_EQ(Int("SELECT count(*) FROM " + a), static_cast<int64_t>(n));
    EXPECT_EQ(Diff(a, d), 0) << n;
    EXPECT_EQ(Int("SELECT count(*) FROM " + a + " WHERE epoch_us(timestamp) = " + std::to_string(small)) > 0, n > 15)
        << n;
  }
  // The encodings really are the ones named, and the timestamps are left uncompressed.
  ProcessedBatch b;
  b.readings = Readings(3000);
  const std::string f = OneFile(Store("enc", "native", b) + "/sensor_readings");
  auto t = db->Query("SELECT path_in_schema, encodings, compression FROM parquet_metadata(" + SqlQuote(f) +
                     ") WHERE path_in_schema IN ('timestamp', 'processing_timestamp', 'anomaly_score') ORDER BY 1");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->rows.size(), 3u);
  EXPECT_EQ(t->Str(0, 1).find("BYTE_STREAM_SPLIT") != std::string::npos, true) << t->Str(0, 1);
  EXPECT_EQ(t->Str(0, 2), "ZSTD");
  for (size_t r : {size_t{1}, size_t{2}}) {
    EXPECT_NE(t->Str(r, 1).find("DELTA_BINARY_PACKED"), std::string::npos) << t->Str(r, 1);
    EXPECT_EQ(t->Str(r, 2), "UNCOMPRESSED");
  }
}

TEST_F(ParquetWriterTest, StatisticsAreReadableAndExact) {
  ParquetWriter w(ParquetWriterOptions{"zstd", 1, 1000});
  ReadingBatch r = Readings(2000);
  std::string f = (dir / "stats.parquet").string();
  ASSERT_TRUE(w.WriteReadings(f, Columns(r), dicts.sensors, dicts.types, dicts.models).ok());
  const std::string m = "parquet_metadata(" + SqlQuote(f) + ")";
  // Per row group, min/max/null_count equal what the data says.
  auto t = db->Query("SELECT row_group_id, path_in_schema, stats_min_value, stats_max_value, stats_null_count FROM " +
                     m + " ORDER BY row_group_id, column_id");
  ASSERT_TRUE(t.ok()) << t.status().message();
  ASSERT_EQ(t->rows.size(), 18u);  // 2 row groups x 9 columns
  for (size_t i = 0; i < t->rows.size(); i++) {
    const std::string col = t->Str(i, 1);
    const int64_t rg = t->Int(i, 0);
    const std::string slice = "(SELECT * FROM " + Glob(f) + " LIMIT 1000 OFFSET " + std::to_string(rg * 1000) + ")";
    EXPECT_EQ(t->Int(i, 4), Int("SELECT count(*) FILTER (WHERE \"" + col + "\" IS NULL) FROM " + slice)) << col;
    if (col == "sensor_id" || col == "timestamp" || col == "anomaly_type" || col == "model_version" ||
        col == "anomaly_score") {
      auto e = db->Query("SELECT min(\"" + col + "\")::VARCHAR, max(\"" + col + "\")::VARCHAR FROM " + slice);
      ASSERT_TRUE(e.ok());
      if (col == "anomaly_score") {  // numeric: a zero minimum is written as -0.0 (the Parquet rule)
        EXPECT_EQ(t->Num(i, 2), e->Num(0, 0)) << col << " rg " << rg;
        EXPECT_EQ(t->Num(i, 3), e->Num(0, 1)) << col << " rg " << rg;
      } else {
        EXPECT_EQ(t->Str(i, 2), e->Str(0, 0)) << col << " rg " << rg;
        EXPECT_EQ(t->Str(i, 3), e->Str(0, 1)) << col << " rg " << rg;
      }
    }
  }
  // Filters over the statistics give the same answers as a scan.
  EXPECT_EQ(Int("SELECT count(*) FROM " + Glob(f) + " WHERE timestamp >= '2024-11-24 00:00:01.5'"), 500);
  EXPECT_EQ(Int("SELECT count(*) FROM " + Glob(f) + " WHERE anomaly_type = 'spike'"),
            Int("SELECT count(*) FROM (SELECT * FROM " + Glob(f) + " ORDER BY ALL) WHERE anomaly_type = 'spike'"));
}

}  // namespace
}  // namespace iotpipe
