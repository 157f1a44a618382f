// iotpipe process: the processor on a JSON-lines stream (file or stdin).
#include "cli/common.h"

namespace iotpipe::cli {

void AddProcess(CLI::App& app) {
  auto* cmd = app.add_subcommand("process", "Process a JSON-lines stream: decode, detect, store");
  auto input = std::make_shared<std::string>("-");
  auto pa = std::make_shared<PipelineArgs>();
  cmd->add_option("--input", *input, "JSON-lines file, or - for standard input");
  pa->Add(cmd);
  cmd->callback([input, pa] {
    FileSource src(*input);
    std::exit(RunPipeline(&src, *pa));
  });
}

}  // namespace iotpipe::cli
