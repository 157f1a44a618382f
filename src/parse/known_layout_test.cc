// The known-layout fast path gives exactly what the general simdjson parser gives: same readings
// (bit for bit), same dead letters and reasons, on the fuzz corpus, simulated records and
// mutations of the layout; and it takes the records producers actually write.
#include "parse/known_layout.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include "parse/parser.h"
#include "sim/simulator.h"

namespace fs = std::filesystem;

namespace iotpipe {
namespace {

uint64_t Bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

// Parses every record with the fast path on and off and compares the outputs field by field.
void ExpectSameAsGeneralParser(const std::vector<std::string>& records) {
  RawBatch raw;
  for (auto& r : records) raw.Add(r);
  raw.Seal();
  Interner s1(1 << 16), t1(256), s2(1 << 16), t2(256);
  ParserOptions fast, slow;
  slow.known_layout = false;
  Parser pf(&s1, &t1, fast), ps(&s2, &t2, slow);
  ProcessedBatch a, b;
  pf.Parse(raw, a);
  ps.Parse(raw, b);
  ASSERT_EQ(a.readings.size(), b.readings.size());
  ASSERT_EQ(a.dead.size(), b.dead.size());
  for (size_t i = 0; i < a.readings.size(); i++) {
    SCOPED_TRACE("reading " + std::to_string(i));
    EXPECT_EQ(s1.Name(a.readings.sensor[i]), s2.Name(b.readings.sensor[i]));
    EXPECT_EQ(a.readings.ts_us[i], b.readings.ts_us[i]);
    EXPECT_EQ(Bits(a.readings.value[i]), Bits(b.readings.value[i]))
        << a.readings.value[i] << " " << b.readings.value[i];
    EXPECT_EQ(a.readings.gt[i], b.readings.gt[i]);
    ASSERT_EQ(a.readings.type[i] == ReadingBatch::kNoType, b.readings.type[i] == ReadingBatch::kNoType);
    if (a.readings.type[i] != ReadingBatch::kNoType) {
      EXPECT_EQ(t1.Name(a.readings.type[i]), t2.Name(b.readings.type[i]));
    }
  }
  for (size_t i = 0; i < a.dead.size(); i++) {
    EXPECT_EQ(a.dead.raw[i], b.dead.raw[i]);
    EXPECT_EQ(a.dead.reason[i], b.dead.reason[i]);
  }
}

std::vector<std::string> Simulated(Profile profile, size_t n, double malformed) {
  SimConfig c;
  c.profile = profile;
  c.sensors = 50;
  c.malformed_rate = malformed;
  c.anomaly_rate = profile == Profile::kBasic ? 0.05 : -1;
  FleetSimulator sim(c);
  RawBatch raw;
  for (size_t i = 0; i < n; i++) sim.Encode(sim.Next(), raw);
  std::vector<std::string> out;
  for (size_t i = 0; i < raw.size(); i++) out.emplace_back(raw.record(i));
  return out;
}

// The number reader's fast path (<= 15 digits, no exponent: one exact division) returns what
// std::from_chars returns, bit for bit, for decimals of every length and scale around it.
TEST(KnownLayout, NumbersAreBitIdenticalToFromChars) {
  std::mt19937_64 rng(7);
  size_t checked = 0;
  for (int i = 0; i < 200000; i++) {
    const int digits = 1 + static_cast<int>(rng() % 18);
    std::string d;
    for (int k = 0; k < digits; k++) d += static_cast<char>('0' + rng() % 10);
    while (d.size() > 1 && d[0] == '0') d.erase(0, 1);
    const int point = static_cast<int>(rng() % (d.size() + 1));
    std::string num =
        (rng() % 4 == 0 ? "-" : "") +
        (point == 0 ? "0." + d
                    : d.substr(0, point) + (point < static_cast<int>(d.size()) ? "." + d.substr(point) : ""));
    if (i % 10 == 0) num += "e" + std::to_string(static_cast<int>(rng() % 40) - 20);
    const std::string rec =
        "{\"sensor_id\": \"s\", \"timestamp\": 1, \"value\": " + num + ", \"is_anomaly_ground_truth\": false}";
    double want = 0;
    auto r = std::from_chars(num.data(), num.data() + num.size(), want);
    ParsedRecord out;
    const bool ok = ParseKnownLayout(rec, &out);
    if (r.ec != std::errc() || !std::isfinite(want)) continue;
    ASSERT_TRUE(ok) << num;
    ASSERT_EQ(Bits(out.value), Bits(want)) << num;
    checked++;
  }
  EXPECT_GT(checked, 150000u);
  for (const char* num : {"0", "-0", "0.0", "-0.000", "999999999999999", "0.000000000000001", "1732406400.123",
                          "25.125", "-7.1", "123456789012345", "4503599627370497", "0.1", "0.3", "2.675"}) {
    const std::string rec = std::string("{\"sensor_id\": \"s\", \"timestamp\": 1, \"value\": ") + num +
                            ", \"is_anomaly_ground_truth\": false}";
    double want = 0;
    std::from_chars(num, num + std::strlen(num), want);
    ParsedRecord out;
    ASSERT_TRUE(ParseKnownLayout(rec, &out)) << num;
    EXPECT_EQ(Bits(out.value), Bits(want)) << num;
  }
}

TEST(KnownLayout, TakesTheProducersRecords) {
  ParsedRecord r;
  ASSERT_TRUE(ParseKnownLayout(R"({"sensor_id": "sensor_7", "timestamp": 1732406400.123, "value": -25.5, )"
                               R"("is_anomaly_ground_truth": true, "anomaly_type": "spike"})",
                               &r));
  EXPECT_EQ(r.sensor_id, "sensor_7");
  EXPECT_EQ(r.timestamp, 1732406400.123);
  EXPECT_EQ(r.value, -25.5);
  EXPECT_TRUE(r.gt);
  EXPECT_EQ(r.anomaly_type, "spike");
  // Python's json.dumps and compact separators, null type, exponents.
  ASSERT_TRUE(ParseKnownLayout(
      R"({"sensor_id":"a","timestamp":1e9,"value":0,"is_anomaly_ground_truth":false,"anomaly_type":null})", &r));
  EXPECT_EQ(r.timestamp, 1e9);
  EXPECT_TRUE(r.anomaly_type.empty());
  EXPECT_FALSE(r.gt);
  size_t taken = 0;
  auto sim = Simulated(Profile::kBasic, 5000, 0);
  for (auto& rec : sim) taken += ParseKnownLayout(rec, &r);
  EXPECT_EQ(taken, sim.size()) << "every well-formed simulated record takes the fast path";
  // Not the layout: the general parser decides.
  for (const char* other :
       {R"({"timestamp": 1, "sensor_id": "a", "value": 1, "is_anomaly_ground_truth": false})",
        R"({"sensor_id": "\u00e9", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false})",
        R"({"sensor_id": "a", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false, "x": 1})",
        R"({"sensor_id": "a", "timestamp": 01, "value": 1, "is_anomaly_ground_truth": false})",
        R"({"sensor_id": "a", "timestamp": 1, "value": NaN, "is_anomaly_ground_truth": false})",
        R"({"sensor_id": "a", "timestamp": 1, "value": 1e400, "is_anomaly_ground_truth": false})",
        R"({"sensor_id": "a", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": false}x)",
        R"({"sensor_id": "a", "timestamp": 1, "value": 1, "is_anomaly_ground_truth": 0})"})
    EXPECT_FALSE(ParseKnownLayout(other, &r)) << other;
}

TEST(KnownLayout, SameResultsAsTheGeneralParserOnCorpusSimulationAndMutations) {
  std::vector<std::string> recs;
  // The fuzz corpus (tests/fuzz/parser), one record per line.
  for (const char* d : {"tests/fuzz/parser"}) {
    fs::path dir = fs::path(IOTPIPE_SOURCE_DIR) / d;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(dir, ec)) {
      std::ifstream f(e.path());
      std::string line;
      while (std::getline(f, line)) recs.push_back(line);
    }
  }
  ASSERT_GE(recs.size(), 3u) << "fuzz corpus not found under " << IOTPIPE_SOURCE_DIR;
  for (auto& r : Simulated(Profile::kBasic, 3000, 0.05)) recs.push_back(r);
  for (auto& r : Simulated(Profile::kRealistic, 3000, 0.05)) recs.push_back(r);
  // Numbers at the edges of the grammar and of double rounding.
  const std::vector<std::string> nums = {"0",
                                         "-0",
                                         "0.0",
                                         "-0.0",
                                         "1",
                                         "-1",
                                         "1.5",
                                         "1e5",
                                         "1E+05",
                                         "1e-5",
                                         "2.5e-3",
                                         "01",
                                         "1.",
                                         ".5",
                                         "-",
                                         "+1",
                                         "1e",
                                         "1e+",
                                         "1.e5",
                                         "0.1",
                                         "0.30000000000000004",
                                         "9007199254740993",
                                         "1234567890123456789",
                                         "12345678901234567890",
                                         "123456789012345678901234",
                                         "1e308",
                                         "1.7976931348623157e308",
                                         "1.8e308",
                                         "1e400",
                                         "5e-324",
                                         "2e-324",
                                         "1e-400",
                                         "4.9406564584124654e-324",
                                         "2.2250738585072011e-308",
                                         "1732406400.123456",
                                         "1732406400.1234567",
                                         "1e15",
                                         "1e16",
                                         "-1e16",
                                         "0e0",
                                         "00",
                                         "-01",
                                         "1.0e+0000",
                                         "1e00000",
                                         "NaN",
                                         "Infinity",
                                         "-Infinity",
                                         "true",
                                         "null",
                                         "\"1\"",
                                         "1 2",
                                         "0x10"};
  for (auto& n : nums) {
    recs.push_back("{\"sensor_id\": \"s\", \"timestamp\": 1732406400, \"value\": " + n +
                   ", \"is_anomaly_ground_truth\": false}");
    recs.push_back("{\"sensor_id\": \"s\", \"timestamp\": " + n +
                   ", \"value\": 1, \"is_anomaly_ground_truth\": false}");
  }
  // Whitespace, ids and types.
  const char nul[] = "{\"sensor_id\": \"s\0\", \"timestamp\": 1, \"value\": 1, \"is_anomaly_ground_truth\": true}";
  for (
      const std::string& r : std::vector<std::string>{
          R"(  {"sensor_id":"s","timestamp":1732406400,"value":1,"is_anomaly_ground_truth":true}  )",
          "{\n\"sensor_id\"\t:\r\n\"s\" , \"timestamp\" :1732406400 ,\"value\":1,\"is_anomaly_ground_truth\":true }",
          R"({"sensor_id": "", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true})",
          R"({"sensor_id": "a\"b", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true})",
          R"({"sensor_id": "tab	in", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true})",
          R"({"sensor_id": "s", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true, "anomaly_type": ""})",
          R"({"sensor_id": "s", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true, "anomaly_type": 3})",
          R"({"sensor_id": "s", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true, "anomaly_type": "drift",})",
          R"({"sensor_id": "s", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true, "asset_id": "a1"})",
          R"({"sensor_id": "s", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true}{})",
          R"({"sensor_id": "s", "timestamp": 1732406400, "value": 1, "is_anomaly_ground_truth": true})",
          std::string(200, 'x'), std::string(nul, sizeof nul - 1)})
    recs.push_back(r);
  recs.push_back("{\"sensor_id\": \"" + std::string(129, 'a') +
                 "\", \"timestamp\": 1, \"value\": 1, \"is_anomaly_ground_truth\": true}");
  // Every truncation and many single-byte mutations of a record of the layout.
  const std::string base = R"({"sensor_id": "sensor_12", "timestamp": 1732406400.25, "value": 25.125, )"
                           R"("is_anomaly_ground_truth": true, "anomaly_type": "spike"})";
  for (size_t k = 0; k < base.size(); k++) recs.push_back(base.substr(0, k));
  std::mt19937 rng(11);
  const std::string alphabet = "{}[]\":, \t\n0123456789.eE+-tfnalsuxyz\\\x01\x7f\xc3\xa9";
  for (int k = 0; k < 4000; k++) {
    std::string m = base;
    int edits = 1 + static_cast<int>(rng() % 2);
    for (int j = 0; j < edits; j++) {
      size_t at = rng() % m.size();
      switch (rng() % 3) {
        case 0:
          m[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          m.insert(at, 1, alphabet[rng() % alphabet.size()]);
          break;
        default:
          m.erase(at, 1);
          break;
      }
    }
    recs.push_back(m);
  }
  size_t fast = 0;
  ParsedRecord r;
  for (auto& rec : recs) fast += ParseKnownLayout(rec, &r);
  EXPECT_GT(fast, recs.size() / 4) << "the comparison exercises the fast path";
  ExpectSameAsGeneralParser(recs);
}

}  // namespace
}  // namespace iotpipe
