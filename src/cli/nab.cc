// iotpipe nab: runs a detector over a NAB-layout corpus (online, one state per file, the live pipeline's
// detector code), writes NAB's results layout and, with --score, NAB's three profile scores.
#include "eval/nab.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/common.h"
#include "detect/artime.h"
#include "detect/artimelik.h"
#include "detect/cadose.h"
#include "detect/detector.h"

namespace iotpipe::cli {

namespace {

// Streams a series through the detector exactly as the pipeline does: ScoreBatch over batches of one sensor.
std::vector<double> RunDetector(const Detector& det, const nab::Series& s) {
  StateStore store(det.state_bytes());
  std::vector<double> out;
  out.reserve(s.values.size());
  ReadingBatch b;
  const size_t kBatch = 4096;
  for (size_t i = 0; i < s.values.size(); i += kBatch) {
    b.Clear();
    size_t e = std::min(s.values.size(), i + kBatch);
    for (size_t k = i; k < e; k++) b.Push(0, s.ts_us[k], s.values[k], false, ReadingBatch::kNoType);
    det.ScoreBatch(b, store);
    for (size_t k = 0; k < b.size(); k++) out.push_back(b.score[k]);
  }
  return out;
}

}  // namespace

void AddNab(CLI::App& app) {
  auto* cmd = app.add_subcommand("nab", "Run a detector over the NAB benchmark and score it");
  struct Opts {
    std::string data, labels, detector, results, json;
    bool score = false, list = false, range_hint = false, nab_rest = false, nab_probation = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--data", o->data, "NAB data directory (<category>/<file>.csv)");
  cmd->add_option("--labels", o->labels, "NAB combined_windows.json");
  cmd->add_option("--detector", o->detector, "Detector name (see --list-detectors)");
  cmd->add_option("--results", o->results, "Results directory (default: a temporary one with --score)");
  cmd->add_flag("--score", o->score, "Optimise the threshold and print the three profile scores");
  cmd->add_option("--json", o->json, "Also write the scores as JSON to this file ('-' = stdout)");
  cmd->add_flag("--list-detectors", o->list, "Print the detector names, one a line");
  cmd->add_flag(
      "--nab-probation", o->nab_probation,
      "artime, artimelik: probation = NAB's (15 % of the file, at most 750 rows) per file, as NAB runs ARTime (not one "
      "configuration for all files)");
  cmd->add_flag("--range-hint", o->range_hint,
                "cadose, artime, artimelik: give each file's [min, max] as the sensor's configured range (NAB's "
                "inputMin/inputMax; "
                "the live pipeline's equivalent is a configured sensor range)");
  cmd->add_flag("--nab-rest-period", o->nab_rest,
                "cadose: rest period = probation / 5 per file, as NAB runs CAD OSE (to check the port against its "
                "published results; not one configuration for all files)");
  cmd->callback([o] {
    if (o->list) {
      for (const auto& n : DetectorNames()) std::printf("%s\n", n.c_str());
      Exit(0);
    }
    if (o->data.empty() || o->labels.empty() || o->detector.empty())
      Fail("nab: --data, --labels and --detector are required", 2);
    if (o->detector.find('_') != std::string::npos) Fail("nab: detector names cannot contain '_'", 2);
    // Options a detector does not implement are refused, never silently ignored.
    auto refuse = [&](bool given, const char* flag, std::initializer_list<const char*> takers) {
      if (!given) return;
      std::string list;
      for (const char* t : takers) {
        if (o->detector == t) return;
        list += std::string(list.empty() ? "" : ", ") + t;
      }
      Fail(std::string("nab: detector ") + o->detector + " does not implement " + flag + " (only " + list + ")", 2);
    };
    refuse(o->nab_probation, "--nab-probation", {"artime", "artimelik"});
    refuse(o->range_hint, "--range-hint", {"cadose", "artime", "artimelik"});
    refuse(o->nab_rest, "--nab-rest-period", {"cadose"});
    auto det = MakeDetector(o->detector);
    if (!det.ok()) Fail(det.status().message(), 2);
    auto windows = nab::LoadWindows(o->labels);
    if (!windows.ok()) Fail(windows.status().message());
    auto corpus = nab::ListCorpus(o->data);
    if (!corpus.ok()) Fail(corpus.status().message());
    std::string results = o->results;
    bool temp_results = false;
    if (results.empty()) {
      if (!o->score) Fail("nab: give --results DIR, --score, or both", 2);
      char tmpl[] = "/tmp/iotpipe-nab-XXXXXX";
      if (!mkdtemp(tmpl)) Fail("nab: cannot create a temporary directory");
      results = tmpl;
      temp_results = true;
    }
    std::vector<nab::FileScores> files;
    size_t rows = 0;
    for (const auto& rel : *corpus) {
      auto w = windows->find(rel);
      if (w == windows->end()) continue;  // NAB scores only labelled files
      auto s = nab::ReadSeries(o->data, rel);
      if (!s.ok()) Fail(s.status().message());
      std::vector<double> sc;
      if (o->detector == "cadose" && (o->range_hint || o->nab_rest)) {
        CadOseParams cp;
        if (o->range_hint && !s->values.empty()) {
          cp.fixed_range = true;
          cp.lo = *std::min_element(s->values.begin(), s->values.end());
          cp.hi = *std::max_element(s->values.begin(), s->values.end());
        }
        if (o->nab_rest)
          cp.rest_period =
              static_cast<int>(static_cast<double>(nab::ProbationLength(static_cast<int64_t>(s->values.size()))) / 5.0);
        sc = RunDetector(CadOseDetector(cp), *s);
      } else if ((o->detector == "artime" || o->detector == "artimelik") && (o->range_hint || o->nab_probation)) {
        ArtimeParams ap;
        if (o->range_hint && !s->values.empty()) {
          ap.fixed_range = true;
          ap.lo = *std::min_element(s->values.begin(), s->values.end());
          ap.hi = *std::max_element(s->values.begin(), s->values.end());
        }
        if (o->nab_probation)
          ap.probation = static_cast<int>(nab::ProbationLength(static_cast<int64_t>(s->values.size())));
        sc = o->detector == "artime" ? RunDetector(ArtimeDetector(ap), *s) : RunDetector(ArtimeLikDetector(ap), *s);
      } else {
        sc = RunDetector(**det, *s);
      }
      rows += sc.size();
      size_t slash = rel.find('/');
      std::string out =
          results + "/" + o->detector + "/" + rel.substr(0, slash) + "/" + o->detector + "_" + rel.substr(slash + 1);
      Check(nab::WriteResultsFile(out, *s, sc), "writing results");
      files.push_back({rel, s->ts_us, std::move(sc), w->second});
    }
    if (files.empty()) Fail("nab: no labelled CSV files under " + o->data);
    std::fprintf(stderr, "nab: %s scored %zu files, %zu rows\n", o->detector.c_str(), files.size(), rows);
    int rc = 0;
    if (o->score) {
      nlohmann::json j;
      j["detector"] = o->detector;
      j["files"] = files.size();
      for (const auto& prof : nab::Profiles()) {
        auto r = nab::OptimizeAndScore(files, prof.cost);
        if (!r.ok()) Fail("nab: " + r.status().message());
        std::printf("%s: %.2f\n", prof.name.c_str(), r->normalized);
        j[prof.name] = {{"score", r->normalized},
                        {"threshold", r->threshold},
                        {"raw", r->raw},
                        {"tp", r->tp},
                        {"fp", r->fp},
                        {"fn", r->fn}};
      }
      if (!o->json.empty()) WriteJson(o->json, j.dump(2));
    }
    if (temp_results) {
      std::error_code ec;
      std::filesystem::remove_all(results, ec);
    }
    Exit(rc);
  });
}

}  // namespace iotpipe::cli
