// Declared input mappings, timestamps and optional labels (parse/mapping.h, parse/timestamp.h).
#include "parse/mapping.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "parse/parser.h"
#include "parse/timestamp.h"

namespace iotpipe {
namespace {

int64_t Iso(std::string_view s) {
  int64_t us = -1;
  EXPECT_TRUE(ParseIsoTimestamp(s, &us)) << s;
  return us;
}

TEST(Timestamp, EpochUnitsDeclaredAndInferred) {
  int64_t us;
  const int64_t want = 1764770000500000;  // 2025-12-03T13:53:20.5Z
  ASSERT_TRUE(EpochToMicros(1764770000.5, TimeUnit::kAuto, &us));
  EXPECT_EQ(us, want);
  ASSERT_TRUE(EpochIntToMicros(1764770000500, TimeUnit::kAuto, &us));
  EXPECT_EQ(us, want);
  ASSERT_TRUE(EpochIntToMicros(1764770000500000, TimeUnit::kAuto, &us));
  EXPECT_EQ(us, want);
  ASSERT_TRUE(EpochIntToMicros(1764770000500000000, TimeUnit::kAuto, &us));
  EXPECT_EQ(us, want);
  ASSERT_TRUE(EpochIntToMicros(1764770000, TimeUnit::kAuto, &us));
  EXPECT_EQ(us, 1764770000000000);
  // Declared units win over the magnitude: 1000 ms is one second.
  ASSERT_TRUE(EpochIntToMicros(1000, TimeUnit::kMillis, &us));
  EXPECT_EQ(us, 1000000);
  ASSERT_TRUE(EpochToMicros(1764770000500.25, TimeUnit::kMillis, &us));
  EXPECT_EQ(us, 1764770000500250);
  EXPECT_EQ(InferTimeUnit(99999999999.0), TimeUnit::kSeconds);
  EXPECT_EQ(InferTimeUnit(1e11), TimeUnit::kMillis);
  EXPECT_EQ(InferTimeUnit(1e14), TimeUnit::kMicros);
  EXPECT_EQ(InferTimeUnit(1e17), TimeUnit::kNanos);
  EXPECT_FALSE(EpochToMicros(1e300, TimeUnit::kSeconds, &us));
}

TEST(Timestamp, Rfc3339AndIso8601WithOffsets) {
  EXPECT_EQ(Iso("2026-12-03T10:00:00Z"), 1796292000000000);
  EXPECT_EQ(Iso("2026-12-03T12:00:00+02:00"), 1796292000000000);
  EXPECT_EQ(Iso("2026-12-03T05:30:00-0430"), 1796292000000000);
  EXPECT_EQ(Iso("2026-12-03T11:00:00+01"), 1796292000000000);
  EXPECT_EQ(Iso("2026-12-03 10:00:00.123456789Z"), 1796292000123456);
  EXPECT_EQ(Iso("2026-12-03T10:00"), 1796292000000000);
  EXPECT_EQ(Iso("2026-12-03"), 1796256000000000);
  int64_t us;
  for (const char* bad : {"2026-13-03T10:00:00Z", "2026-02-30", "2026-12-03T10:00:00Q", "2026-12-03T25:00",
                          "12/03/2026", "2026-12-03T10:00:00+2", "", "2026-12-03T10:00:00."})
    EXPECT_FALSE(ParseIsoTimestamp(bad, &us)) << bad;
  ASSERT_TRUE(ParseTimeText("1764770000500", TimeUnit::kAuto, &us));
  EXPECT_EQ(us, 1764770000500000);
}

TEST(Glob, Patterns) {
  EXPECT_TRUE(GlobMatch("temp*", "temperature"));
  EXPECT_TRUE(GlobMatch("*_c", "t_c"));
  EXPECT_TRUE(GlobMatch("p?essure", "pressure"));
  EXPECT_FALSE(GlobMatch("temp*", "humidity"));
}

struct Row {
  std::string id;
  int64_t ts_us;
  double value;
  int label;  // 0, 1, 2 = NULL
  std::string asset;
};

class MappingTest : public ::testing::Test {
 protected:
  Interner sensors{1000}, types{16}, assets{100};
  ManualClock clock{1800000000000000};

  // Parses records through a mapping; rows and "reason" strings of the dead letters.
  void Parse(const InputMapping& m, const std::vector<std::string>& recs) {
    parser = std::make_unique<Parser>(&sensors, &types);
    parser->SetAssets(&assets);
    parser->SetClock(&clock);
    ASSERT_TRUE(parser->SetMapping(m).ok());
    RawBatch raw;
    for (auto& r : recs) raw.Add(r);
    raw.Seal();
    ProcessedBatch out;
    parser->Parse(raw, out);
    rows.clear();
    for (size_t i = 0; i < out.readings.size(); i++) {
      Row r{sensors.Name(out.readings.sensor[i]), out.readings.ts_us[i], out.readings.value[i], out.readings.gt[i], ""};
      if (!out.readings.asset.empty() && out.readings.asset[i] != ReadingBatch::kNoAsset)
        r.asset = assets.Name(out.readings.asset[i]);
      rows.push_back(r);
    }
    dead = out.dead.reason;
  }
  std::unique_ptr<Parser> parser;
  std::vector<Row> rows;
  std::vector<std::string> dead;
};

TEST_F(MappingTest, OriginalRecordWithoutLabelIsAnUnlabelledReading) {
  InputMapping m;  // original
  Parse(m, {R"({"sensor_id": "t1", "timestamp": 1764770000.5, "value": 21.3})",
            R"({"sensor_id": "t1", "timestamp": 1764770001, "value": 21.4, "is_anomaly_ground_truth": true})",
            R"({"sensor_id": "t1", "timestamp": 1764770002, "value": 21.5, "is_anomaly_ground_truth": null})",
            R"({"sensor_id": "t1", "timestamp": 1764770003, "value": 21.6, "is_anomaly_ground_truth": "yes"})"});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].label, ReadingBatch::kNoLabel);
  EXPECT_EQ(rows[0].ts_us, 1764770000500000);
  EXPECT_EQ(rows[1].label, 1);
  EXPECT_EQ(rows[2].label, ReadingBatch::kNoLabel);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].substr(0, 11), "wrong_type:");
  EXPECT_FALSE(parser->mapped());
}

TEST_F(MappingTest, JsonPointersAndExplicitReasons) {
  InputMapping m;
  m.format = InputFormat::kJson;
  m.id = "/meta/id";
  m.time = "/ts";
  m.value = "/payload/temp";
  m.label = "/meta/anomaly";
  Parse(m, {R"({"meta": {"id": "t1"}, "ts": "2026-12-03T10:00:00Z", "payload": {"temp": 21.5}})",
            R"({"meta": {"id": "t1", "anomaly": false}, "ts": 1796292001000, "payload": {"temp": 21.6}})",
            R"({"meta": {"id": "t1"}, "ts": "2026-12-03T10:00:00Z", "payload": {}})",
            R"({"meta": {"id": "t1"}, "ts": {"s": 1}, "payload": {"temp": 1}})",
            R"({"meta": {"id": "t1"}, "ts": 1, "payload": {"temp": "hot"}})",
            R"({"meta": {"id": "t1"}, "ts": "yesterday", "payload": {"temp": 1}})",
            R"({"meta": {"id": 7.5}, "ts": 1796292001, "payload": {"temp": 1}})",
            R"({"meta": {"id": "t1"}, "ts": 5.0e21, "payload": {"temp": 1}})", R"([1])", R"({"meta": )"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, "t1");
  EXPECT_EQ(rows[0].ts_us, 1796292000000000);
  EXPECT_EQ(rows[0].label, ReadingBatch::kNoLabel);
  EXPECT_EQ(rows[1].ts_us, 1796292001000000);
  EXPECT_EQ(rows[1].label, 0);
  ASSERT_EQ(dead.size(), 8u);
  EXPECT_EQ(dead[0], "missing_field: /payload/temp");
  EXPECT_EQ(dead[1], "wrong_type: /ts is an object");
  EXPECT_EQ(dead[2], "wrong_type: /payload/temp is a string, expected a number");
  EXPECT_EQ(dead[3].substr(0, 41), "timestamp_out_of_range: /ts = \"yesterday\"");
  EXPECT_EQ(dead[4], "wrong_type: /meta/id is a number, expected a string");
  EXPECT_EQ(dead[5].substr(0, 23), "timestamp_out_of_range:");
  EXPECT_EQ(dead[6].substr(0, 14), "not_an_object:");
  EXPECT_EQ(dead[7].substr(0, 13), "invalid_json:");
  EXPECT_EQ(parser->rejected(Reject::kWrongType), 3u);
}

TEST_F(MappingTest, FlatDeviceJsonIsOneReadingPerQuantityWithTheDeviceAsAsset) {
  InputMapping m;
  m.format = InputFormat::kFlat;
  Parse(
      m,
      {R"({"device": "pump-3", "ts": "2026-12-03T10:00:00Z", "temperature": 61.2, "pressure": 3.1, "vibration": 0.02, "state": "on"})",
       R"({"device": "pump-3", "ts": 1796292001000000000, "temperature": 61.3})",
       R"({"device": "pump-3", "temperature": 61.3})", R"({"device": "pump-3", "ts": 1796292001, "state": "on"})"});
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].id, "pump-3/temperature");
  EXPECT_EQ(rows[1].id, "pump-3/pressure");
  EXPECT_EQ(rows[2].id, "pump-3/vibration");
  EXPECT_EQ(rows[2].value, 0.02);
  EXPECT_EQ(rows[0].asset, "pump-3");
  EXPECT_EQ(rows[3].ts_us, 1796292001000000);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0], "missing_field: /ts");
  EXPECT_EQ(dead[1], "missing_field: / (the record) has no numeric quantity");
  EXPECT_EQ(parser->expanded(), 2u);
  // A list, a pattern, another separator, arrival time.
  m.quantities = {"pressure"};
  m.separator = ".";
  m.time = "arrival";
  Parse(m, {R"({"device": "pump-3", "temperature": 61.2, "pressure": 3.1})",
            R"({"device": "pump-3", "temperature": 61.2})"});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, "pump-3.pressure");
  EXPECT_EQ(rows[0].ts_us, clock.NowMicros());
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0], "missing_field: /pressure");
  m.quantities.clear();
  m.pattern = "temp*";
  Parse(m, {R"({"device": "pump-3", "temperature": 61.2, "pressure": 3.1})"});
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].id, "pump-3.temperature");
}

TEST_F(MappingTest, TelegrafJson) {
  InputMapping m;
  m.format = InputFormat::kTelegraf;
  Parse(
      m,
      {R"({"fields":{"usage_idle":91.5,"usage_user":4},"name":"cpu","tags":{"host":"h1","cpu":"cpu0"},"timestamp":1764770000})",
       R"({"fields":{"usage_idle":91.5},"name":"cpu","tags":{"host":"h1"}})",
       R"({"fields":[1],"name":"cpu","timestamp":1764770000})"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, "cpu,host=h1,cpu=cpu0/usage_idle");
  EXPECT_EQ(rows[1].id, "cpu,host=h1,cpu=cpu0/usage_user");
  EXPECT_EQ(rows[1].value, 4);
  EXPECT_EQ(rows[0].asset, "cpu,host=h1,cpu=cpu0");
  EXPECT_EQ(rows[0].ts_us, 1764770000000000);
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0], "missing_field: /timestamp");
  EXPECT_EQ(dead[1], "wrong_type: /fields is an array, expected an object");
}

TEST_F(MappingTest, InfluxLineProtocol) {
  InputMapping m;
  m.format = InputFormat::kInflux;
  Parse(m, {"weather,location=us temperature=82,humidity=54i,ok=true,note=\"a b\" 1465839830100400200",
            "weather,location=us\\ west temperature=82.5 1465839830", "weather temperature=82",
            "weather temperature=hot 1465839830", "weather", "weather,location=us temperature=82 12x"});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].id, "weather,location=us/temperature");
  EXPECT_EQ(rows[1].id, "weather,location=us/humidity");
  EXPECT_EQ(rows[1].value, 54);
  EXPECT_EQ(rows[0].ts_us, 1465839830100400);
  EXPECT_EQ(rows[0].asset, "weather,location=us");
  EXPECT_EQ(rows[2].id, "weather,location=us west/temperature");
  EXPECT_EQ(rows[2].ts_us, 1465839830000000);
  ASSERT_EQ(dead.size(), 4u);
  EXPECT_EQ(dead[0].substr(0, 24), "missing_field: timestamp");
  EXPECT_EQ(dead[1], "wrong_type: field temperature = 'hot' is not a number, boolean or string");
  EXPECT_EQ(dead[2].substr(0, 24), "missing_field: field set");
  EXPECT_EQ(dead[3], "wrong_type: timestamp '12x' is not an integer");
}

// Escaped keys are unescaped into the decoder's buffer; several in one line must all stay intact.
TEST_F(MappingTest, InfluxEscapedKeysStayIntact) {
  InputMapping m;
  m.format = InputFormat::kInflux;
  Parse(m, {"m\\,x,t\\=1=a\\ b a\\ b=1,c\\,d=2,e\\=f=3,plain=4 1465839830",
            "m\\,x,t\\=1=a\\ b long\\ key\\ with\\ many\\ escapes=5 1465839831"});
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].id, "m,x,t=1=a b/a b");
  EXPECT_EQ(rows[1].id, "m,x,t=1=a b/c,d");
  EXPECT_EQ(rows[2].id, "m,x,t=1=a b/e=f");
  EXPECT_EQ(rows[3].id, "m,x,t=1=a b/plain");
  EXPECT_EQ(rows[3].value, 4);
  EXPECT_EQ(rows[4].id, "m,x,t=1=a b/long key with many escapes");
  EXPECT_EQ(rows[4].asset, "m,x,t=1=a b");
  EXPECT_TRUE(dead.empty());
}

TEST_F(MappingTest, CsvSingleAndMultiField) {
  InputMapping m;
  m.format = InputFormat::kCsv;
  Parse(m, {"sensor_id,timestamp,value,is_anomaly_ground_truth", "t1,1764770000.5,21.3,",
            "t1,2026-12-03T10:00:00Z,21.4,true", "t1,1764770002,abc,false", "t1,1764770003", "\"t,2\",1764770004,1,0"});
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].label, ReadingBatch::kNoLabel);
  EXPECT_EQ(rows[1].label, 1);
  EXPECT_EQ(rows[1].ts_us, 1796292000000000);
  EXPECT_EQ(rows[2].id, "t,2");
  ASSERT_EQ(dead.size(), 2u);
  EXPECT_EQ(dead[0], "wrong_type: column value = 'abc' is not a number");
  EXPECT_EQ(dead[1], "malformed: row has 2 cells, the header 4");
  EXPECT_EQ(parser->skipped(), 1u);
  m.id = "device";
  m.time = "time";
  Parse(m, {"device,time,temperature,pressure", "pump-3,1764770000,61.2,3.1"});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, "pump-3/temperature");
  EXPECT_EQ(rows[1].asset, "pump-3");
}

// The word-at-a-time check agrees with the byte loop: every byte value at every position of ids
// of 1 to 24 bytes (around the 8-byte words and the tail).
TEST(MappingCheck, ControlByteCheckEqualsTheByteLoop) {
  for (size_t n = 1; n <= 24; n++) {
    for (size_t at = 0; at < n; at++) {
      for (int b = 0; b < 256; b++) {
        std::string id(n, 'a');
        id[at] = static_cast<char>(b);
        const bool want = b < 0x20 || b == 0x7f;
        ASSERT_EQ(HasControlByte(id), want) << "n " << n << " at " << at << " byte " << b;
      }
    }
  }
  EXPECT_FALSE(HasControlByte("sensor_\xc3\xa9t\xe2\x82\xac-\xff\x80 long enough"));
}

TEST(MappingResolve, RefusesBadDeclarations) {
  InputMapping m;
  m.format = InputFormat::kJson;
  m.time = "ts";
  auto r = ResolveMapping(m);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
  EXPECT_NE(r.status().message().find("input time = 'ts' is not a JSON Pointer"), std::string::npos);
  m.time = "/ts";
  m.time_unit = "minutes";
  EXPECT_FALSE(ResolveMapping(m).ok());
  m.time_unit = "ms";
  m.quantities = {"a"};
  EXPECT_FALSE(ResolveMapping(m).ok()) << "quantities need value = \"-\"";
  m.value = "-";
  EXPECT_TRUE(ResolveMapping(m).ok());
}

}  // namespace
}  // namespace iotpipe
