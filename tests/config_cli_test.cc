// End-to-end tests of configuration files: `--config FILE`, `config check`, `config example`.
#include <fstream>

#include "test_util.h"

using iotpipe::testing::Bin;
using iotpipe::testing::Query;
using iotpipe::testing::Sh;
using iotpipe::testing::TempDir;

namespace {

void Write(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
}

TEST(ConfigCli, FileDrivesRunAndFlagsOverrideIt) {
  TempDir d("cfg_run");
  const std::string cfg = d.str() + "/iotpipe.toml";
  Write(cfg, "# a run of 50 sensors\n[run]\nsensors = 50\nevents = 20000\nrate = \"max\"\ndata_dir = \"" + d.str() +
                 "/data\"\nhttp = \"off\"\nquiet = true\nmalformed-rate = 0.01\n\n[process]\nbatch-size = 512\n");
  auto c = Sh(Bin() + " config check " + cfg);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.out.find("valid"), std::string::npos);
  // --events on the command line wins over the file's 20000; the rest comes from the file.
  auto r = Sh(Bin() + " run --config " + cfg + " --events 30000 --summary-json " + d.str() + "/s.json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto rows = Query(d.str() + "/data",
                    "select (select count(*) from sensor_readings) + (select count(*) from dead_letters) as n, "
                    "(select count(distinct sensor_id) from sensor_readings) as s, "
                    "(select count(*) from dead_letters) as dead");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["n"].get<int64_t>(), 30000);
  EXPECT_EQ(rows[0]["s"].get<int64_t>(), 50);
  EXPECT_GT(rows[0]["dead"].get<int64_t>(), 100) << "malformed-rate from the file";
  // The file also works before the subcommand.
  r = Sh(Bin() + " --config " + cfg + " run --events 1000 --data-dir " + d.str() + "/data2");
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(ConfigCli, EveryProblemIsNamedWithItsKeyAndLine) {
  TempDir d("cfg_bad");
  const std::string cfg = d.str() + "/bad.toml";
  Write(cfg, "[run]\nsensors = \"many\"\nsensorz = 5\n[proces]\nx = 1\n[run.deep]\ny = 2\n");
  auto r = Sh(Bin() + " config check " + cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("[run] sensors (line 2): invalid value"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[run] sensorz (line 3): unknown key (did you mean 'sensors'?)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unknown section: there is no command 'proces' (did you mean 'process'?)"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("there is no command 'deep'"), std::string::npos) << r.err;
  // The same file given to a command refuses to start, with the same messages, before doing anything.
  auto run = Sh(Bin() + " run --config " + cfg + " --data-dir " + d.str() + "/data");
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("sensorz"), std::string::npos) << run.err;
  EXPECT_FALSE(std::filesystem::exists(d.str() + "/data"));
  // A flag with a non-boolean value, a value of the wrong shape, a top-level key.
  Write(cfg, "quiet = true\n[run]\nquiet = 3\nsensors = { a = 1 }\n");
  r = Sh(Bin() + " config check " + cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("top level quiet (line 1): unknown key"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[run] quiet (line 3): expects true or false"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("there is no command 'sensors'"), std::string::npos) << r.err;
}

// Values the command parses itself are checked by `config check` too (issue 14, finding 7: it said
// "valid" for each of these, and `run` then refused them).
TEST(ConfigCli, CheckRefusesWhatTheCommandWouldRefuse) {
  TempDir d("cfg_values");
  const std::string cfg = d.str() + "/values.toml";
  Write(cfg,
        "[run]\nrate = \"1e400\"\nduration = \"-5h\"\nstart = \"99999-01-01\"\nhttp = \"true\"\nevents = -5\n"
        "regime-at = \"2200-01-01T00:00:00Z\"\n");
  auto r = Sh(Bin() + " config check " + cfg);
  EXPECT_EQ(r.code, 2);
  for (const char* key : {"rate (line 2)", "duration (line 3)", "start (line 4)", "http (line 5)", "events (line 6)",
                          "regime-at (line 7)"})
    EXPECT_NE(r.err.find(std::string("[run] ") + key + ": invalid value"), std::string::npos) << key << r.err;
  EXPECT_EQ(r.err.find("--http: --http"), std::string::npos) << r.err;
  Write(cfg, "[run]\nrate = \"max\"\nduration = \"90m\"\nstart = \"2026-12-03T10:00:00Z\"\nhttp = \"off\"\n");
  r = Sh(Bin() + " config check " + cfg);
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(ConfigCli, SyntaxErrorsAndMissingFilesAreClear) {
  TempDir d("cfg_syntax");
  const std::string cfg = d.str() + "/broken.toml";
  Write(cfg, "[run]\nsensors = 5\nrate = \"max\n");
  auto r = Sh(Bin() + " config check " + cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find(cfg + ":3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("TOML syntax error"), std::string::npos) << r.err;
  Write(cfg, std::string("\xff\xfe[run]\n", 8));
  r = Sh(Bin() + " run --config " + cfg);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("syntax error"), std::string::npos) << r.err;
  r = Sh(Bin() + " config check " + d.str() + "/nope.toml");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("cannot read"), std::string::npos) << r.err;
}

TEST(ConfigCli, ExampleListsEveryKeyAndIsItselfValid) {
  TempDir d("cfg_example");
  auto r = Sh(Bin() + " config example run");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* k :
       {"[run]", "#sensors = 100", "#data-dir = \"data\"", "#detector = \"baseline\"", "#quiet = false"})
    EXPECT_NE(r.out.find(k), std::string::npos) << k << "\n" << r.out;
  // Uncommenting every key gives a file that checks as valid (defaults are valid values).
  std::string text;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.size() > 1 && line[0] == '#' && line.find(" = ") != std::string::npos && line[1] != ' ')
      line = line.substr(1);
    text += line + "\n";
  }
  Write(d.str() + "/all.toml", text);
  auto c = Sh(Bin() + " config check " + d.str() + "/all.toml");
  EXPECT_EQ(c.code, 0) << c.err << "\n" << text;
  auto all = Sh(Bin() + " config example");
  EXPECT_EQ(all.code, 0);
  for (const char* k : {"[run]", "[process]", "[simulate]", "[train]", "[models.promote]"})
    EXPECT_NE(all.out.find(k), std::string::npos) << k;
}

}  // namespace

namespace {

// One sensor of device pump-1: 300 noisy normal readings, then a 50-reading episode (level shift).
std::string EpisodeInput(const std::string& dir) {
  const std::string path = dir + "/episode.jsonl";
  std::ofstream f(path);
  uint64_t x = 88172645463325252ULL;
  for (int k = 0; k < 350; k++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const double noise = (static_cast<double>(x % 1000) / 1000.0 - 0.5);
    f << "{\"sensor_id\": \"pump-1/pressure\", \"timestamp\": " << 1732406400 + k
      << ", \"value\": " << 25 + noise + (k >= 300 ? 30 : 0) << "}\n";
  }
  return path;
}

}  // namespace

// Issue 19: the alert policy as a [<command>.alerts] table, checked key by key and applied.
TEST(ConfigCli, AlertsTableSetsThePolicy) {
  TempDir d("cfg_alerts");
  const std::string in = EpisodeInput(d.str()), cfg = d.str() + "/a.toml", bad = d.str() + "/bad.toml";
  Write(cfg,
        "[process]\nhttp = \"off\"\nquiet = true\nno-checkpoint = true\n[process.alerts]\nmin-points = 5\n"
        "group-by = \"device\"\nquiet = 20\nalertmanager-resend = 30\nalertmanager-labels = \"env=prod,team=ops\"\n");
  auto c = Sh(Bin() + " config check " + cfg);
  ASSERT_EQ(c.code, 0) << c.err;
  Write(bad, "[process.alerts]\nmin-pionts = 5\ngroup-by = \"building\"\n");
  c = Sh(Bin() + " config check " + bad);
  EXPECT_EQ(c.code, 2);
  EXPECT_NE(c.err.find("[process.alerts] min-pionts (line 2): unknown key (did you mean 'alert-min-points'?)"),
            std::string::npos)
      << c.err;
  EXPECT_NE(c.err.find("[process.alerts] group-by (line 3): invalid value"), std::string::npos) << c.err;
  // Applied: the 50 flagged readings of the episode are one alert of device pump-1, opened at the 5th.
  auto r = Sh(Bin() + " process --config " + cfg + " --input " + in + " --data-dir " + d.str() + "/data");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("alert open: sensor pump-1 since"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(5 points"), std::string::npos) << r.err;
  auto rows = Query(d.str() + "/data", "select sensor_id, points, state from alerts");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["sensor_id"], "pump-1");
  EXPECT_EQ(rows[0]["points"].get<int64_t>(), 50);
  // A minimum above the episode's length: no alert at all.
  r = Sh(Bin() + " process --config " + cfg + " --alert-min-points 51 --input " + in + " --data-dir " + d.str() +
         "/data2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("alert open"), std::string::npos) << r.err;
}
