#include "cli/common.h"

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "core/fsutil.h"
#include "core/timeutil.h"

namespace iotpipe::cli {

std::atomic<bool> g_stop{false};

static void OnSignal(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // second Ctrl-C: leave at once
}

void InstallSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void Exit(int code) { throw ExitCode{code}; }

void Fail(const std::string& msg, int code) {
  std::fprintf(stderr, "iotpipe: error: %s\n", msg.c_str());
  Exit(code);
}

void Check(const Status& s, const std::string& context, int code) {
  if (!s.ok()) Fail(context.empty() ? s.message() : context + ": " + s.message(), code);
}

namespace {

// Checks of values the command parses itself, as CLI11 validators, so that `config check` (which runs
// only CLI11's checks) refuses what the command would refuse (issue 14: it said "valid" for
// rate = "1e400", duration = "-5h", start = "99999-01-01").
const CLI::Validator kRate(
    [](std::string& v) -> std::string {
      if (v == "max" || v.empty()) return "";  // empty: the default
      char* end = nullptr;
      const double r = std::strtod(v.c_str(), &end);
      return end && !*end && r > 0 && std::isfinite(r) ? "" : "must be a positive number or 'max', got '" + v + "'";
    },
    "NUMBER|max");
const CLI::Validator kSpan(
    [](std::string& v) -> std::string {
      if (v.empty()) return "";
      auto d = ParseDurationMicros(v);
      if (!d.ok()) return d.status().message();
      return d.value() > 0 ? "" : "must be a positive span, got '" + v + "'";
    },
    "SPAN");
const CLI::Validator kTime(
    [](std::string& v) -> std::string {
      if (v.empty()) return "";
      auto t = ParseTimeMicros(v);
      if (!t.ok()) return t.status().message();
      return t.value() >= 0 && t.value() < 4102444800000000LL ? "" : "must be in [1970, 2100), got '" + v + "'";
    },
    "TIME");

}  // namespace

void SimArgs::Add(CLI::App* app) {
  app->add_option("--sensors", sensors, "Number of simulated sensors")->check(CLI::Range(1u, 10000000u));
  app->add_option("--profile", profile, "Sensor profile: basic (N(25,5), point anomalies) or realistic")
      ->check(CLI::IsMember({"basic", "realistic"}));
  app->add_option("--rate", rate, "Events per second overall, or 'max' (default: one reading/s per sensor, real time)")
      ->check(kRate);
  app->add_option("--events", events, "Stop after this many events (-1: no limit)")
      ->check(CLI::Range(int64_t{-1}, INT64_MAX));
  app->add_option("--duration", duration, "Span of sensor time to produce: 3600, 90m, 12h, 7d")->check(kSpan);
  app->add_option("--seed", seed, "Random seed (the fleet depends only on it)");
  app->add_option("--start", start, "Sensor time where the run begins (ISO 8601 UTC or epoch seconds)")->check(kTime);
  app->add_option("--malformed-rate", malformed_rate, "Fraction of records replaced by malformed ones")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--anomaly-rate", anomaly_rate,
                  "basic: P(point anomaly), default 0.001; realistic: episodes per sensor-hour, default 0.125; "
                  "with --asset-size: correlation breaks per asset-hour, default 0.25");
  app->add_option("--asset-size", asset_size,
                  "Group sensors into correlated assets of K channels (records carry asset_id; anomalies are "
                  "correlation breaks no single channel shows); 0 = off")
      ->check(CLI::Range(0u, 64u));
  app->add_option("--speedup", speedup,
                  "Paced like real time but with sensor time running this many times faster (one reading/s of "
                  "sensor time per sensor; 0: off); not with --rate")
      ->check(CLI::NonNegativeNumber);
  app->add_option("--regime-at", regime_at,
                  "Regime change from this sensor time (ISO 8601 UTC or epoch seconds): every sensor's level moves "
                  "by --regime-shift noise sd and its deviations from baseline scale by --regime-scale")
      ->check(kTime);
  app->add_option("--regime-shift", regime_shift, "Regime change: level shift in units of each sensor's noise sd");
  app->add_option("--regime-scale", regime_scale, "Regime change: factor on deviations from each sensor's baseline");
}

SimSourceOptions SimArgs::Resolve(Clock* clock) const {
  SimSourceOptions o;
  o.sim.sensors = sensors;
  auto prof = ParseProfile(profile);
  if (!prof.ok()) Fail(prof.status().message(), 2);
  o.sim.profile = prof.value();
  o.sim.seed = seed;
  o.sim.malformed_rate = malformed_rate;
  o.sim.anomaly_rate = anomaly_rate;
  o.sim.asset_size = asset_size;
  o.max_events = events;
  bool max = rate == "max";
  double r = 0;
  if (!max && !rate.empty()) {
    char* end = nullptr;
    r = std::strtod(rate.c_str(), &end);
    if (!end || *end || !(r > 0) || !std::isfinite(r))
      Fail("--rate must be a positive number or 'max', got '" + rate + "'", 2);
  }
  o.realtime = !max;
  o.sim.interval_s = (max || rate.empty()) ? 1.0 : static_cast<double>(sensors) / r;
  if (speedup > 0) {
    if (!rate.empty()) Fail("--speedup and --rate do not combine: --speedup paces sensor time itself", 2);
    o.speedup = speedup;
  }
  if (!regime_at.empty()) {
    auto t = ParseTimeMicros(regime_at);
    if (!t.ok()) Fail("--regime-at: " + t.status().message(), 2);
    o.sim.regime_from_us = t.value();
    o.sim.regime_shift = regime_shift;
    o.sim.regime_scale = regime_scale;
  }
  int64_t span_us = -1;
  if (!duration.empty()) {
    auto d = ParseDurationMicros(duration);
    if (!d.ok()) Fail("--duration: " + d.status().message(), 2);
    span_us = d.value();
    o.max_steps = static_cast<int64_t>(std::ceil(static_cast<double>(span_us) / 1e6 / o.sim.interval_s));
  }
  if (!start.empty()) {
    auto t = ParseTimeMicros(start);
    if (!t.ok()) Fail("--start: " + t.status().message(), 2);
    o.sim.start_us = t.value();
  } else {
    int64_t now = clock->NowMicros() / 1000000 * 1000000;
    if (max) {
      // As fast as possible: end the simulated span at "now" so the data is "the last ..." of it.
      if (span_us < 0 && events > 0)
        span_us = static_cast<int64_t>(static_cast<double>(events) / sensors * o.sim.interval_s * 1e6);
      o.sim.start_us = now - std::max<int64_t>(span_us, 0);
    } else {
      o.sim.start_us = now;
    }
  }
  return o;
}

int64_t PeakRssMb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024;
}

void WriteJson(const std::string& path, const std::string& json) {
  if (path == "-") {
    std::printf("%s\n", json.c_str());
    return;
  }
  Check(WriteFileAtomic(path, json + "\n"), "writing " + path);
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); j++) row[j] = j;
  for (size_t i = 1; i <= a.size(); i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); j++) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

namespace {

// The closest of names to word, if close enough to be a typo (at most a third of its letters wrong).
std::string Closest(std::string_view word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = std::max<size_t>(1, word.size() / 3) + 1;
  for (const auto& n : names) {
    const size_t d = EditDistance(word, n);
    if (d < best_d) best_d = d, best = n;
  }
  return best;
}

}  // namespace

int SuggestFixes(CLI::App& app, int argc, char** argv) {
  // The deepest subcommand that was parsed is where the unknown words belong.
  CLI::App* at = &app;
  for (;;) {
    auto subs = at->get_subcommands();
    if (subs.empty()) break;
    at = subs.front();
  }
  std::vector<std::string> commands, options;
  for (const CLI::App* sub : at->get_subcommands({})) commands.push_back(sub->get_name());
  for (const CLI::App* a = at; a; a = a->get_parent())
    for (const CLI::Option* o : a->get_options())
      for (const auto& l : o->get_lnames()) options.push_back("--" + l);
  int n = 0;
  for (int i = 1; i < argc; i++) {
    const std::string_view w = argv[i];
    if (w.starts_with("--")) {
      const std::string_view name = w.substr(0, w.find('='));
      if (std::find(options.begin(), options.end(), name) != options.end()) continue;
      if (auto c = Closest(name, options); !c.empty()) {
        std::fprintf(stderr, "iotpipe: unknown option %.*s; did you mean %s?\n", static_cast<int>(name.size()),
                     name.data(), c.c_str());
        n++;
      }
    } else if (!w.starts_with("-") && !commands.empty() && at->get_subcommands().empty() &&
               std::find(commands.begin(), commands.end(), w) == commands.end()) {
      if (auto c = Closest(w, commands); !c.empty()) {
        std::fprintf(stderr, "iotpipe: unknown command %.*s; did you mean %s?\n", static_cast<int>(w.size()), w.data(),
                     c.c_str());
        n++;
        break;  // the words after a mistyped command are its arguments
      }
    }
  }
  return n;
}

}  // namespace iotpipe::cli
