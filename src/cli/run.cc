// iotpipe run: the embedded pipeline (simulator -> processor -> detector -> Parquet) in one process.
#include "cli/common.h"

namespace iotpipe::cli {

void AddRun(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run the embedded pipeline: simulate, process, detect, store");
  auto sim = std::make_shared<SimArgs>();
  auto pa = std::make_shared<PipelineArgs>();
  sim->Add(cmd);
  pa->Add(cmd);
  cmd->callback([sim, pa] {
    SimSourceOptions so = sim->Resolve(RealClock::Get());
    SimSource src(so, RealClock::Get());
    std::exit(RunPipeline(&src, *pa));
  });
}

}  // namespace iotpipe::cli
