// iotpipe evaluate: detection quality of the stored data against its ground-truth labels.
#include "eval/evaluate.h"

#include <cstdio>
#include <filesystem>

#include "cli/common.h"
#include "core/duck.h"
#include "lifecycle/shadow.h"

namespace iotpipe::cli {

void AddEvaluate(CLI::App& app) {
  auto* cmd = app.add_subcommand("evaluate", "Precision/recall/F1 (point and episode), delay, false alarms");
  auto data_dir = std::make_shared<std::string>("data");
  auto json = std::make_shared<bool>(false);
  auto where = std::make_shared<std::string>();
  cmd->add_option("--data-dir", *data_dir, "Data directory");
  cmd->add_flag("--json", *json, "Print one JSON object");
  cmd->add_option("--where", *where, "Restrict rows with an SQL predicate, e.g. \"timestamp > '2024-11-24'\"");
  auto shadow = std::make_shared<bool>(false);
  cmd->add_flag("--shadow", *shadow,
                "Compare production and shadow results on the rows both scored (DATA/shadow_scores)");
  cmd->callback([data_dir, json, where, shadow] {
    std::error_code ec;
    if (!std::filesystem::is_directory(*data_dir, ec)) Fail("evaluate: no data directory " + *data_dir, 2);
    if (*shadow) {
      auto c = ml::CompareShadow(*data_dir, *where);
      if (!c.ok()) Fail("evaluate --shadow: " + c.status().message());
      if (*json)
        std::printf("%s\n", c->ToJson().dump(2).c_str());
      else
        std::printf("%s", c->ToText().c_str());
      Exit(0);
    }
    auto db = Duck::Open("", 0);
    if (!db.ok()) Fail(db.status().message());
    Check(CreateDataViews(**db, *data_dir), "opening " + *data_dir);
    Check((*db)->SetProgress(Duck::ProgressPrinter("evaluate")), "evaluate progress");
    auto rep = Evaluate(**db, "sensor_readings", *where);
    if (!rep.ok()) Fail("evaluate: " + rep.status().message());
    if (*json)
      std::printf("%s\n", rep->ToJson().dump(2).c_str());
    else
      std::printf("%s", rep->ToText().c_str());
    Exit(0);
  });
}

}  // namespace iotpipe::cli
