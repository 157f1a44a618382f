#include "parse/plain_scan.h"

#include <gtest/gtest.h>

#include <charconv>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "parse/mapping.h"

namespace iotpipe {
namespace {

TEST(PlainScan, TakesPlainMembersAndLeavesTheRestToTheDom) {
  PlainScan s;
  ASSERT_TRUE(s.Compile({"/device/id", "/t", "/reading/v", "", "/a~1b"}));
  ASSERT_TRUE(s.Scan(R"({"device": {"id": "pump-3", "x": [1, {"y": null}]}, "t": 1764770000123, )"
                     R"("reading": {"v": -2.5e1}, "a/b": true, "t": "dup"})"));
  EXPECT_EQ(s.value(0).kind, PlainScan::Kind::kString);
  EXPECT_EQ(s.value(0).text, "pump-3");
  EXPECT_EQ(s.value(1).kind, PlainScan::Kind::kInt);
  EXPECT_EQ(s.value(1).text, "1764770000123");
  EXPECT_EQ(s.value(2).kind, PlainScan::Kind::kDouble);
  EXPECT_EQ(s.value(2).text, "-2.5e1");
  EXPECT_EQ(s.value(3).kind, PlainScan::Kind::kAbsent);
  EXPECT_EQ(s.value(4).kind, PlainScan::Kind::kTrue);
  // Not valid JSON, or not plain: the DOM decides.
  for (const char* rec : {R"({"t": 1,})", R"({"t": 01})", R"({"t": 1} x)", R"({"t": "a\"b"})", R"({"t": "é"})",
                          R"({"t": -0})", R"({"t": 123456789012345678901})", R"({"device": [1]})", R"({"t": tru})",
                          R"([1])", R"({"t": 1)", R"({"t" 1})", "{\"t\": \"a\tb\"}"})
    EXPECT_FALSE(s.Scan(rec)) << rec;
  EXPECT_FALSE(PlainScan().Compile({"/a", "/a/b"})) << "a path that is a prefix of another";
  EXPECT_FALSE(PlainScan().Compile({"/a", "/a"}));
  EXPECT_FALSE(PlainScan().Compile({"a"}));
}

TEST(PlainScan, NumbersReadAsFromChars) {
  std::mt19937_64 rng(11);
  for (int k = 0; k < 200000; k++) {
    // Mantissas of 1 to 19 digits, fractions, exponents from -30 to 30: inside and outside the fast path.
    std::string t = (rng() % 2 ? "-" : "") + std::to_string(rng() % (uint64_t{1} << (1 + rng() % 63)));
    if (rng() % 2) t += "." + std::to_string(rng() % 100000000);
    if (rng() % 2) t += "e" + std::to_string(static_cast<int>(rng() % 61) - 30);
    double a = 0, b = 0;
    ASSERT_EQ(PlainDouble(t, &a), std::from_chars(t.data(), t.data() + t.size(), b).ec == std::errc()) << t;
    EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << t << ": " << a << " vs " << b;
  }
  int64_t i = 0;
  EXPECT_TRUE(PlainInt("-9223372036854775808", &i));
  EXPECT_EQ(i, INT64_MIN);
  EXPECT_TRUE(PlainInt("9223372036854775807", &i));
  EXPECT_EQ(i, INT64_MAX);
  EXPECT_FALSE(PlainInt("9223372036854775808", &i));
  EXPECT_FALSE(PlainInt("-9223372036854775809", &i));
  EXPECT_FALSE(PlainInt("12345678901234567890", &i));
}

// Mutations of JSON records: both decoders (fast path on and off) give the same reading or the same
// rejection with the same detail, for every record.
std::string Mutate(std::string s, std::mt19937& rng) {
  static const char* kBits[] = {
      "\"", "{",  "}",       "[", "]",    ",",    ":", " ",  "-",     "0",  "1.5",
      "e9", "\\", "\\u00e9", "é", "null", "true", "x", "\t", "1e999", "-0", "12345678901234567890"};
  const int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits && !s.empty(); e++) {
    const size_t at = rng() % s.size();
    switch (rng() % 3) {
      case 0:
        s.erase(at, 1 + rng() % 3);
        break;
      case 1:
        s.insert(at, kBits[rng() % (sizeof kBits / sizeof *kBits)]);
        break;
      default:
        s[at] = kBits[rng() % (sizeof kBits / sizeof *kBits)][0];
        break;
    }
  }
  return s;
}

void ExpectSameDecoding(MappedDecoder& fast, MappedDecoder& dom, const std::string& rec) {
  std::string padded = rec + std::string(64, '\0');
  const std::string_view r(padded.data(), rec.size());
  size_t n1 = 0, n2 = 0;
  std::string d1, d2;
  const Reject a = fast.Decode(r, 1764770000000000, &n1, &d1);
  const Reject b = dom.Decode(r, 1764770000000000, &n2, &d2);
  ASSERT_EQ(static_cast<int>(a), static_cast<int>(b)) << rec << "\n fast: " << d1 << "\n dom: " << d2;
  ASSERT_EQ(n1, n2) << rec;
  if (a != Reject::kNone) {
    EXPECT_EQ(d1, d2) << rec;
    return;
  }
  for (size_t i = 0; i < n1; i++) {
    const MappedReading &x = fast.out()[i], &y = dom.out()[i];
    EXPECT_EQ(x.id, y.id) << rec;
    EXPECT_EQ(x.asset, y.asset) << rec;
    EXPECT_EQ(x.ts_us, y.ts_us) << rec;
    EXPECT_EQ(std::memcmp(&x.value, &y.value, sizeof x.value), 0) << rec << ": " << x.value << " vs " << y.value;
    EXPECT_EQ(x.label, y.label) << rec;
  }
}

TEST(PlainScan, DecodesExactlyAsTheDomPath) {
  const std::vector<std::string> seeds = {
      R"({"device": {"id": "sensor_7"}, "time_ms": 1764770000123, "reading": {"v": 21.375}})",
      R"({"sensor_id": "t1", "timestamp": 1764770000.5, "value": 21.3})",
      R"({"sensor_id": 42, "timestamp": "2026-12-03T10:00:00.250+01:00", "value": -7, "is_anomaly_ground_truth": true})",
      R"({"sensor_id": "a", "timestamp": 1764770000123456789, "value": 1e-3, "is_anomaly_ground_truth": null,)"
      R"( "asset_id": "pump-3", "extra": [1, 2, {"x": "y"}], "n": null})",
      R"({"value": 0.1, "sensor_id": "b", "timestamp": 1764770000, "asset_id": null, "value": 5})",
      R"({"sensor_id": "c", "timestamp": {"s": 1}, "value": 2})",
      R"({"sensor_id": "d", "timestamp": 1764770000, "value": "12"})",
      R"({"sensor_id": "", "timestamp": 1764770000, "value": 1})",
      R"({"sensor_id": "e", "timestamp": 99999999999999999, "value": 1e308, "is_anomaly_ground_truth": 1})",
      R"(  {"sensor_id":"f","timestamp":1764770000,"value":12345678901234567890}  )",
  };
  struct Shape {
    const char *id, *time, *value;
  };
  for (Shape sh : {Shape{"/device/id", "/time_ms", "/reading/v"}, Shape{"", "", ""}}) {
    InputMapping m;
    m.format = InputFormat::kJson;
    m.id = sh.id, m.time = sh.time, m.value = sh.value;
    auto rm = ResolveMapping(m);
    ASSERT_TRUE(rm.ok()) << rm.status().message();
    MappedDecoder fast(rm.value(), ParserOptions{}), dom(rm.value(), ParserOptions{});
    dom.UseFastPath(false);
    std::mt19937 rng(7);
    for (const std::string& seed : seeds) {
      ExpectSameDecoding(fast, dom, seed);
      for (int k = 0; k < 3000; k++) ExpectSameDecoding(fast, dom, Mutate(seed, rng));
    }
  }
}

}  // namespace
}  // namespace iotpipe
