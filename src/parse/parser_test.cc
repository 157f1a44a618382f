#include "parse/parser.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "sim/rng.h"
#include "sim/simulator.h"

namespace iotpipe {
namespace {

class ParserTest : public ::testing::Test {
 protected:
  Interner sensors{1000}, types{16};
  Parser parser{&sensors, &types};

  // Parses one record through the batch API; returns the reason name ("ok" for a reading).
  std::string Reason(const std::string& rec) {
    RawBatch raw;
    raw.Add(rec);
    raw.Seal();
    ProcessedBatch out;
    parser.Parse(raw, out);
    EXPECT_EQ(out.readings.size() + out.dead.size(), 1u) << "every record must be accounted for";
    if (out.readings.size() == 1) return "ok";
    EXPECT_EQ(out.dead.raw[0], rec) << "dead letters keep the raw bytes";
    std::string r = out.dead.reason[0];
    last_detail = r;
    return r.substr(0, r.find(':'));
  }
  std::string last_detail;
};

const char* kGood =
    R"({"sensor_id": "sensor_7", "timestamp": 1732406400.123, "value": 25.3, "is_anomaly_ground_truth": false})";

TEST_F(ParserTest, AcceptsTheOriginalWireFormat) {
  ParsedRecord r;
  std::string detail;
  ASSERT_EQ(parser.ParseCopy(kGood, &r, &detail), Reject::kNone) << detail;
  EXPECT_EQ(r.sensor_id, "sensor_7");
  EXPECT_DOUBLE_EQ(r.timestamp, 1732406400.123);
  EXPECT_DOUBLE_EQ(r.value, 25.3);
  EXPECT_FALSE(r.gt);
  EXPECT_EQ(Reason(kGood), "ok");
}

TEST_F(ParserTest, KeepsAnomalyTypeAndAllowsExtraFieldsInAnyOrder) {
  RawBatch raw;
  raw.Add(
      R"({"value": -1.5e2, "extra": {"a": [1, 2, {"b": null}]}, "anomaly_type": "spike", "is_anomaly_ground_truth": true, "timestamp": 1732406400, "sensor_id": "s\u00e9nsor \"x\""})");
  raw.Add(R"({"sensor_id": "a", "timestamp": 1, "value": 0, "is_anomaly_ground_truth": false, "anomaly_type": null})");
  raw.Seal();
  ProcessedBatch out;
  parser.Parse(raw, out);
  ASSERT_EQ(out.readings.size(), 2u) << (out.dead.size() ? out.dead.reason[0] : "");
  EXPECT_EQ(sensors.Name(out.readings.sensor[0]), "s\xc3\xa9nsor \"x\"");
  EXPECT_EQ(out.readings.value[0], -150.0);
  EXPECT_EQ(out.readings.ts_us[0], 1732406400000000LL);
  EXPECT_EQ(types.Name(out.readings.type[0]), "spike");
  EXPECT_EQ(out.readings.gt[0], 1);
  EXPECT_EQ(out.readings.type[1], ReadingBatch::kNoType);
}

TEST_F(ParserTest, SameSensorGetsSameId) {
  RawBatch raw;
  raw.Add(kGood);
  raw.Add(R"({"sensor_id": "other", "timestamp": 1, "value": 0, "is_anomaly_ground_truth": false})");
  raw.Add(kGood);
  raw.Seal();
  ProcessedBatch out;
  parser.Parse(raw, out);
  ASSERT_EQ(out.readings.size(), 3u);
  EXPECT_EQ(out.readings.sensor[0], out.readings.sensor[2]);
  EXPECT_NE(out.readings.sensor[0], out.readings.sensor[1]);
}

TEST_F(ParserTest, EveryRejectionReason) {
  EXPECT_EQ(Reason(""), "empty");
  EXPECT_EQ(Reason("   "), "empty");
  EXPECT_EQ(Reason("{\"pad\": \"" + std::string(70000, 'x') + "\", " + std::string(kGood + 1)), "oversize");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "val)"), "invalid_json");
  EXPECT_EQ(Reason("not json at all"), "invalid_json");
  EXPECT_EQ(Reason(R"({"sensor_id": "s" "timestamp": 1})"), "invalid_json");
  EXPECT_EQ(Reason(std::string(kGood) + " trailing"), "invalid_json");
  EXPECT_EQ(Reason(std::string(kGood) + "{}"), "invalid_json");
  EXPECT_EQ(
      Reason("{\"sensor_id\": \"s\xff\xfe\", \"timestamp\": 1, \"value\": 1, \"is_anomaly_ground_truth\": false}"),
      "invalid_json");  // not UTF-8
  EXPECT_EQ(Reason(R"([1, 2, 3])"), "not_an_object");
  EXPECT_EQ(Reason(R"("a string")"), "not_an_object");
  EXPECT_EQ(Reason(R"(42)"), "not_an_object");
  EXPECT_EQ(Reason(R"({"timestamp": 1, "value": 1, "is_anomaly_ground_truth": false})"), "missing_field");
  EXPECT_EQ(last_detail, "missing_field: sensor_id");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "value": 1, "is_anomaly_ground_truth": false})"), "missing_field");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "is_anomaly_ground_truth": false})"), "missing_field");
  // Labels are optional (issue 16): a record without one is an unlabelled reading, not a rejection.
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": 1})"), "ok");
  EXPECT_EQ(Reason(R"({})"), "missing_field");
  EXPECT_EQ(Reason(R"({"sensor_id": 7, "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false})"), "wrong_type");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": "2024-01-01", "value": 1, "is_anomaly_ground_truth": false})"),
            "wrong_type");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": "25.1", "is_anomaly_ground_truth": false})"),
            "wrong_type");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": null, "is_anomaly_ground_truth": false})"),
            "wrong_type");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": [1], "is_anomaly_ground_truth": false})"),
            "wrong_type");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": 0})"), "wrong_type");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": "false"})"),
            "wrong_type");
  EXPECT_EQ(
      Reason(R"({"sensor_id": "s", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false, "anomaly_type": 3})"),
      "wrong_type");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": NaN, "is_anomaly_ground_truth": false})"),
            "non_finite_value");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": Infinity, "is_anomaly_ground_truth": false})"),
            "non_finite_value");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": -Infinity, "is_anomaly_ground_truth": false})"),
            "non_finite_value");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": NaN, "value": 1, "is_anomaly_ground_truth": false})"),
            "non_finite_value");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": 1e400, "is_anomaly_ground_truth": false})"),
            "value_out_of_range");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1, "value": 1e20, "is_anomaly_ground_truth": false})"),
            "value_out_of_range");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": -5, "value": 1, "is_anomaly_ground_truth": false})"),
            "timestamp_out_of_range");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1732406400123, "value": 1, "is_anomaly_ground_truth": false})"),
            "timestamp_out_of_range");
  EXPECT_EQ(Reason(R"({"sensor_id": "s", "timestamp": 1e400, "value": 1, "is_anomaly_ground_truth": false})"),
            "timestamp_out_of_range");
  EXPECT_EQ(Reason(R"({"sensor_id": "", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false})"),
            "invalid_sensor_id");
  EXPECT_EQ(Reason(R"({"sensor_id": "a\u0001b", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false})"),
            "invalid_sensor_id");
  EXPECT_EQ(Reason("{\"sensor_id\": \"" + std::string(200, 'x') +
                   "\", \"timestamp\": 1, \"value\": 1, \"is_anomaly_ground_truth\": false}"),
            "invalid_sensor_id");
}

// Tokens that are not JSON numbers are invalid_json, numbers too large for a double out of range
// (issue 14, finding 7: 0x10, 01 and 1. were value_out_of_range).
TEST_F(ParserTest, MalformedNumbersAreInvalidJsonHugeOnesOutOfRange) {
  auto rec = [](const std::string& v) {
    return R"({"sensor_id": "s", "timestamp": 1732406400, "value": )" + v + R"(, "is_anomaly_ground_truth": false})";
  };
  for (const char* bad : {"0x10", "01", "1.", "-", "1e", "+1", ".5"}) {
    EXPECT_EQ(Reason(rec(bad)), "invalid_json") << bad << ": " << last_detail;
    if (std::string(bad) == "0x10") {
      EXPECT_NE(last_detail.find("'0x10' is not a JSON number"), std::string::npos);
    }
  }
  EXPECT_EQ(Reason(rec("1e400")), "value_out_of_range") << last_detail;
  EXPECT_EQ(Reason(rec("-0.5e-3")), "ok");
  EXPECT_EQ(Reason(rec("0")), "ok");
}

TEST_F(ParserTest, TooManySensorsIsADeadLetterNotACrash) {
  Interner small(2), t(4);
  Parser p(&small, &t);
  RawBatch raw;
  for (const char* id : {"a", "b", "c", "a"})
    raw.Add(std::string("{\"sensor_id\": \"") + id +
            "\", \"timestamp\": 1, \"value\": 1, \"is_anomaly_ground_truth\": false}");
  raw.Seal();
  ProcessedBatch out;
  p.Parse(raw, out);
  EXPECT_EQ(out.readings.size(), 3u);
  ASSERT_EQ(out.dead.size(), 1u);
  EXPECT_EQ(out.dead.reason[0].substr(0, 16), "too_many_sensors");
  EXPECT_EQ(p.rejected(Reject::kTooManySensors), 1u);
}

TEST_F(ParserTest, OriginsFollowTheirRecords) {
  RawBatch raw;
  raw.Add(kGood);
  raw.Add("garbage");
  raw.Add(kGood);
  raw.origins = {{3, 100}, {3, 101}, {3, 102}};
  raw.Seal();
  ProcessedBatch out;
  parser.Parse(raw, out);
  ASSERT_EQ(out.readings.origins.size(), 2u);
  EXPECT_EQ(out.readings.origins[1].offset, 102);
  ASSERT_EQ(out.dead.origins.size(), 1u);
  EXPECT_EQ(out.dead.origins[0].offset, 101);
}

// Fuzz-style robustness: random mutations of valid records never crash the parser, and every
// record ends up either as a reading or a dead letter. (A libFuzzer target is parser_fuzz.cc.)
TEST_F(ParserTest, RandomMutationsAreAlwaysAccountedFor) {
  Rng rng(12345);
  const std::string seeds[] = {
      kGood,
      R"({"sensor_id": "sensor_1", "timestamp": 1732406400.5, "value": 99.1, "is_anomaly_ground_truth": true, "anomaly_type": "spike"})",
      R"({"sensor_id": "x", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false, "nested": {"a": [1, {"b": "c"}]}})"};
  const char alphabet[] = "{}[]\":,.-+eE0123456789 \\ntruefalsnul\x01\xff\xc3";
  RawBatch raw;
  for (int i = 0; i < 20000; i++) {
    std::string s = seeds[rng.Below(3)];
    int edits = 1 + static_cast<int>(rng.Below(4));
    for (int e = 0; e < edits && !s.empty(); e++) {
      size_t pos = rng.Below(s.size());
      switch (rng.Below(4)) {
        case 0:
          s[pos] = alphabet[rng.Below(sizeof(alphabet) - 1)];
          break;
        case 1:
          s.erase(pos, 1 + rng.Below(5));
          break;
        case 2:
          s.insert(pos, 1, alphabet[rng.Below(sizeof(alphabet) - 1)]);
          break;
        default:
          s.resize(pos);
          break;
      }
    }
    raw.Add(s);
  }
  raw.Seal();
  ProcessedBatch out;
  parser.Parse(raw, out);
  EXPECT_EQ(out.readings.size() + out.dead.size(), raw.size());
  EXPECT_GT(out.dead.size(), 10000u);
  for (size_t i = 0; i < out.readings.size(); i++) {
    EXPECT_TRUE(std::isfinite(out.readings.value[i]));
    EXPECT_GE(out.readings.ts_us[i], 0);
  }
}

// The simulator's encoder and the parser agree: every encoded record decodes to the reading it
// encodes, and every deliberately malformed one is rejected with its reason.
SimConfig Basic(uint32_t n, uint64_t seed = 7) {
  SimConfig c;
  c.sensors = n;
  c.seed = seed;
  c.start_us = 1732406400LL * 1000000;
  return c;
}

TEST(Simulator, EncodedRecordsParseBackExactly) {
  Interner sensors(1000), types(16);
  Parser parser(&sensors, &types);
  SimConfig c = Basic(10);
  c.anomaly_rate = 0.05;
  FleetSimulator sim(c);
  RawBatch raw;
  std::vector<SimReading> truth;
  for (int i = 0; i < 2000; i++) {
    truth.push_back(sim.Next());
    ASSERT_TRUE(sim.Encode(truth.back(), raw));
  }
  raw.Seal();
  ProcessedBatch out;
  parser.Parse(raw, out);
  ASSERT_EQ(out.dead.size(), 0u);
  ASSERT_EQ(out.readings.size(), truth.size());
  for (size_t i = 0; i < truth.size(); i++) {
    EXPECT_EQ(sensors.Name(out.readings.sensor[i]), FleetSimulator::SensorName(truth[i].sensor));
    EXPECT_EQ(out.readings.ts_us[i], truth[i].ts_us);
    EXPECT_EQ(out.readings.value[i], truth[i].value);
    EXPECT_EQ(out.readings.gt[i] != 0, truth[i].kind != AnomalyKind::kNone);
    if (truth[i].kind != AnomalyKind::kNone) {
      EXPECT_EQ(types.Name(out.readings.type[i]), AnomalyKindName(truth[i].kind));
    }
  }
}

TEST(Simulator, MalformedRecordsAreAllRejectedWithTheirReason) {
  Interner sensors(1000), types(16);
  Parser parser(&sensors, &types);
  SimConfig c = Basic(10);
  c.malformed_rate = 1.0;
  FleetSimulator sim(c);
  RawBatch raw;
  for (int i = 0; i < 500; i++) EXPECT_FALSE(sim.Encode(sim.Next(), raw));
  raw.Seal();
  ProcessedBatch out;
  parser.Parse(raw, out);
  EXPECT_EQ(out.readings.size(), 0u);
  ASSERT_EQ(out.dead.size(), 500u);
  std::map<std::string, int> reasons;
  for (auto& r : out.dead.reason) reasons[r.substr(0, r.find(':'))]++;
  for (auto k : FleetSimulator::MalformedKinds()) EXPECT_GT(reasons[std::string(k)], 0) << k;
}

}  // namespace
}  // namespace iotpipe
