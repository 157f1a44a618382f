#include "eval/evaluate.h"

#include <gtest/gtest.h>

namespace iotpipe {
namespace {

// Builds a sensor_readings-shaped table from (sensor, second, gt, type, predicted) rows.
struct Row {
  const char* sensor;
  int t;
  bool gt;
  const char* type;
  bool pred;
};

std::unique_ptr<Duck> Make(const std::vector<Row>& rows, const char* model = "m1") {
  auto db = std::move(Duck::Open().value());
  EXPECT_TRUE(db->Exec(std::string("CREATE TABLE r (") + kReadingsSchema + ")").ok());
  for (auto& r : rows) {
    std::string sql = "INSERT INTO r VALUES ('" + std::string(r.sensor) +
                      "', TIMESTAMP '2024-11-24 00:00:00' + INTERVAL " + std::to_string(r.t) + " SECOND, 1.0, " +
                      (r.gt ? "true" : "false") + ", " + (r.type ? "'" + std::string(r.type) + "'" : "NULL") +
                      ", now()::TIMESTAMP, " + (r.pred ? "true" : "false") + ", 0.5, '" + model + "')";
    EXPECT_TRUE(db->Exec(sql).ok()) << sql;
  }
  return db;
}

TEST(Evaluate, PointAndEpisodeArithmeticOnAHandMadeCase) {
  // Sensor a: an episode of 3 points (t=10..12) flagged once at t=11 (delay 1 s), a false alarm at t=20
  //           spanning two points (one alarm), and a missed single-point spike at t=30.
  // Sensor b: a 2-point drift episode fully flagged; nothing else.
  std::vector<Row> rows;
  for (int t = 0; t < 40; t++) {
    bool ep = t >= 10 && t <= 12, spike = t == 30;
    rows.push_back(
        {"a", t, ep || spike, ep ? "level_shift" : (spike ? "spike" : nullptr), t == 11 || t == 20 || t == 21});
  }
  for (int t = 0; t < 10; t++)
    rows.push_back({"b", t, t == 5 || t == 6, (t == 5 || t == 6) ? "drift" : nullptr, t == 5 || t == 6});
  auto db = Make(rows);
  auto rep = Evaluate(*db, "r");
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  const EvalFigures& f = rep->overall;
  EXPECT_EQ(f.tp, 3);  // a@11, b@5, b@6
  EXPECT_EQ(f.fp, 2);  // a@20, a@21
  EXPECT_EQ(f.fn, 3);  // a@10, a@12, a@30
  EXPECT_DOUBLE_EQ(f.point_precision(), 3.0 / 5);
  EXPECT_DOUBLE_EQ(f.point_recall(), 3.0 / 6);
  EXPECT_EQ(f.episodes, 3);
  EXPECT_EQ(f.episodes_found, 2);
  EXPECT_EQ(f.alarms, 3);  // a@11, a@20-21, b@5-6
  EXPECT_EQ(f.false_alarms, 1);
  EXPECT_DOUBLE_EQ(f.episode_recall(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(f.episode_precision(), 2.0 / 3);
  EXPECT_DOUBLE_EQ(f.mean_delay_s, 0.5);  // (1 + 0) / 2
  EXPECT_NEAR(f.sensor_days, (39.0 + 9.0) / 86400, 1e-12);
  // Per type: one-vs-normal.
  ASSERT_EQ(rep->by_type.size(), 3u);
  const EvalFigures& ls = rep->by_type.at("level_shift");
  EXPECT_EQ(ls.tp, 1);
  EXPECT_EQ(ls.fn, 2);
  EXPECT_EQ(ls.fp, 2);
  EXPECT_EQ(ls.episodes, 1);
  EXPECT_EQ(ls.episodes_found, 1);
  EXPECT_EQ(rep->by_type.at("spike").episodes_found, 0);
  EXPECT_DOUBLE_EQ(rep->by_type.at("drift").point_recall(), 1.0);
  auto j = rep->ToJson();
  for (const char* k : {"point_precision", "point_recall", "point_f1", "episode_recall", "episode_f1",
                        "false_alarms_per_sensor_day", "by_type"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_TRUE(j["by_type"]["spike"].contains("episode_f1"));
  EXPECT_TRUE(j["by_model"].contains("m1"));
}

TEST(Evaluate, AdjacentEpisodesOfDifferentTypesAreSeparate) {
  std::vector<Row> rows;
  for (int t = 0; t < 10; t++) {
    const char* ty = t < 3 ? nullptr : (t < 6 ? "stuck" : "drift");
    rows.push_back({"a", t, ty != nullptr, ty, t == 7});
  }
  auto db = Make(rows);
  auto rep = Evaluate(*db, "r");
  ASSERT_TRUE(rep.ok());
  EXPECT_EQ(rep->overall.episodes, 2);
  EXPECT_EQ(rep->overall.episodes_found, 1);
  EXPECT_EQ(rep->by_type.at("stuck").episodes_found, 0);
  EXPECT_EQ(rep->by_type.at("drift").episodes_found, 1);
}

TEST(Evaluate, EmptyDataGivesZerosNotErrors) {
  auto db = Make({});
  auto rep = Evaluate(*db, "r");
  ASSERT_TRUE(rep.ok()) << rep.status().message();
  EXPECT_EQ(rep->overall.rows, 0);
  EXPECT_EQ(rep->overall.point_precision(), 0);
  EXPECT_EQ(F1(0, 0), 0);
}

}  // namespace
}  // namespace iotpipe
