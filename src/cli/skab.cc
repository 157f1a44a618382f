// iotpipe skab: SKAB's outlier protocol (first 400 rows of each experiment train, the rest are scored;
// point-wise precision/recall/F1 pooled over the files).
#include "eval/skab.h"

#include <cstdio>

#include "cli/common.h"

namespace iotpipe::cli {

void AddSkab(CLI::App& app) {
  auto* cmd = app.add_subcommand("skab", "Run a detector over SKAB experiments (outlier protocol) and score it");
  struct Opts {
    std::string data, detector = "pca";
    bool json = false, list = false;
    size_t max_files = 0;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--data", o->data, "Directory of SKAB experiment CSVs (e.g. skab/data/valve1)");
  cmd->add_option("--detector", o->detector, "Detector: pca (multivariate T²+Q) or a univariate one per channel");
  cmd->add_option("--max-files", o->max_files, "Only the first N experiments (0 = all)");
  cmd->add_flag("--json", o->json, "Print one JSON object");
  cmd->add_flag("--list-detectors", o->list, "Print the detector names, one a line");
  cmd->callback([o] {
    if (o->list) {
      for (const auto& n : skab::DetectorNames()) std::printf("%s\n", n.c_str());
      Exit(0);
    }
    if (o->data.empty()) Fail("skab: --data is required", 2);
    auto r = skab::Run(o->data, o->detector, o->max_files);
    if (!r.ok()) Fail("skab: " + r.status().message(), r.status().IsInvalidArgument() ? 2 : 1);
    if (o->json) {
      std::printf("%s\n", r->ToJson().dump(2).c_str());
    } else {
      std::printf(
          "detector: %s\nfiles: %lld\nscored rows: %lld\nprecision: %.4f\nrecall: %.4f\nf1: %.4f\n"
          "false alarm rate (FAR): %.4f\nmissing alarm rate (MAR): %.4f\n",
          r->detector.c_str(), static_cast<long long>(r->files), static_cast<long long>(r->rows), r->precision,
          r->recall, r->f1, r->far, r->mar);
    }
    Exit(0);
  });
}

}  // namespace iotpipe::cli
