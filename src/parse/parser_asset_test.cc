// The optional wire field `asset_id` (multivariate assets, detect/asset.h): validated, interned into the
// batch's asset column, and a bad one is a dead letter with its reason.
#include <gtest/gtest.h>

#include <string>

#include "parse/parser.h"

namespace iotpipe {
namespace {

std::string Rec(const std::string& sensor, const std::string& asset_json) {
  return R"({"sensor_id": ")" + sensor +
         R"(", "timestamp": 1732406400.5, "value": 1.5, "is_anomaly_ground_truth": false)" +
         (asset_json.empty() ? std::string() : ", \"asset_id\": " + asset_json) + "}";
}

TEST(ParserAsset, ValidAssetIdsFillTheAssetColumnOnlyWhenPresent) {
  Interner sensors{100}, types{16}, assets{100};
  Parser p(&sensors, &types);
  p.SetAssets(&assets);
  RawBatch raw;
  raw.Add(Rec("a", ""));  // no asset
  raw.Add(Rec("b", R"("pump_1")"));
  raw.Add(Rec("c", "null"));  // null = no asset
  raw.Add(Rec("d", R"("pump_2")"));
  raw.Add(Rec("e", R"("pump_1")"));
  raw.Seal();
  ProcessedBatch out;
  p.Parse(raw, out);
  ASSERT_EQ(out.readings.size(), 5u);
  ASSERT_EQ(out.readings.asset.size(), 5u);
  EXPECT_EQ(out.readings.asset[0], ReadingBatch::kNoAsset);
  EXPECT_EQ(assets.Name(out.readings.asset[1]), "pump_1");
  EXPECT_EQ(out.readings.asset[2], ReadingBatch::kNoAsset);
  EXPECT_EQ(assets.Name(out.readings.asset[3]), "pump_2");
  EXPECT_EQ(out.readings.asset[4], out.readings.asset[1]);

  // A batch without any asset_id keeps the column empty (no cost for fleets without assets).
  RawBatch plain;
  plain.Add(Rec("a", ""));
  plain.Add(Rec("b", ""));
  plain.Seal();
  ProcessedBatch out2;
  p.Parse(plain, out2);
  EXPECT_EQ(out2.readings.size(), 2u);
  EXPECT_TRUE(out2.readings.asset.empty());
  // The trailing rows after the last asset-carrying record are filled too.
  RawBatch tail;
  tail.Add(Rec("a", R"("pump_9")"));
  tail.Add(Rec("b", ""));
  tail.Seal();
  ProcessedBatch out3;
  p.Parse(tail, out3);
  ASSERT_EQ(out3.readings.asset.size(), 2u);
  EXPECT_EQ(out3.readings.asset[1], ReadingBatch::kNoAsset);
}

TEST(ParserAsset, BadAssetIdsAreDeadLettersWithAReason) {
  Interner sensors{100}, types{16}, assets{2};
  Parser p(&sensors, &types);
  p.SetAssets(&assets);
  struct Case {
    std::string json, reason, detail;
  };
  const std::vector<Case> cases = {
      {"7", "wrong_type", "asset_id must be a string or null, got number"},
      {"true", "wrong_type", "got boolean"},
      {"[\"x\"]", "wrong_type", "got array"},
      {"{}", "wrong_type", "got object"},
      {"\"\"", "invalid_asset_id", "1 to 128 bytes"},
      {"\"" + std::string(129, 'x') + "\"", "invalid_asset_id", "1 to 128 bytes"},
      {"\"a\\u0001b\"", "invalid_asset_id", "control character"},
  };
  for (const auto& c : cases) {
    RawBatch raw;
    raw.Add(Rec("s", c.json));
    raw.Seal();
    ProcessedBatch out;
    p.Parse(raw, out);
    ASSERT_EQ(out.dead.size(), 1u) << c.json;
    EXPECT_EQ(out.readings.size(), 0u);
    EXPECT_EQ(out.dead.reason[0].substr(0, c.reason.size()), c.reason) << out.dead.reason[0];
    EXPECT_NE(out.dead.reason[0].find(c.detail), std::string::npos) << out.dead.reason[0];
  }
  EXPECT_EQ(p.rejected(Reject::kInvalidAssetId), 3u);
  EXPECT_EQ(RejectName(Reject::kInvalidAssetId), "invalid_asset_id");
  // A full asset table: the record is a dead letter, never dropped.
  RawBatch raw;
  raw.Add(Rec("s", R"("a1")"));
  raw.Add(Rec("s", R"("a2")"));
  raw.Add(Rec("s", R"("a3")"));
  raw.Seal();
  ProcessedBatch out;
  p.Parse(raw, out);
  EXPECT_EQ(out.readings.size(), 2u);
  ASSERT_EQ(out.dead.size(), 1u);
  EXPECT_NE(out.dead.reason[0].find("asset table is full"), std::string::npos);
  // Without an asset table the field is still validated.
  Parser q(&sensors, &types);
  ParsedRecord r;
  std::string detail;
  EXPECT_EQ(q.ParseCopy(Rec("s", "1"), &r, &detail), Reject::kWrongType);
  EXPECT_EQ(q.ParseCopy(Rec("s", R"("ok")"), &r, &detail), Reject::kNone);
  EXPECT_EQ(r.asset_id, "ok");
}

}  // namespace
}  // namespace iotpipe
