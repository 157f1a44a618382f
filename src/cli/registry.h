// Every subcommand registers here (one file per subcommand under src/cli/).
#pragma once
#include <CLI/CLI.hpp>

#include "cli/common.h"

namespace iotpipe::cli {

inline void RegisterAll(CLI::App& app) {
  AddRun(app);
  AddSimulate(app);
  AddProcess(app);
  AddQuery(app);
  AddEvaluate(app);
  AddBench(app);
  AddNab(app);
  AddSkab(app);
  AddTrain(app);
  AddModels(app);
  AddScore(app);
  AddMonitor(app);
  AddLifecycleDemo(app);
}

}  // namespace iotpipe::cli
