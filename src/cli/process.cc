// iotpipe process: the processor on a JSON-lines stream (file or stdin).
#include "cli/common.h"
#include "cli/ingest_cli.h"
#include "cli/kafka_cli.h"
#include "cli/mqtt_cli.h"

namespace iotpipe::cli {

void AddProcess(CLI::App& app) {
  auto* cmd = app.add_subcommand("process", "Process a JSON-lines stream: decode, detect, store");
  auto input = std::make_shared<std::string>("-");
  auto pa = std::make_shared<PipelineArgs>();
  auto source = std::make_shared<std::string>("file");
  auto ka = std::make_shared<KafkaArgs>();
  auto mq = std::make_shared<MqttArgs>();
  auto ia = std::make_shared<IngestArgs>();
  cmd->add_option("--source", *source,
                  "Where records come from: file (see --input), kafka, mqtt or http (POST /api/ingest on --http)")
      ->check(CLI::IsMember({"file", "kafka", "mqtt", "http"}));
  cmd->add_option(
      "--input", *input,
      "File of one record a line (JSON lines, line protocol, CSV: see --input-format), or - for standard input");
  ka->AddConsumer(cmd);
  mq->Add(cmd);
  ia->Add(cmd);
  pa->Add(cmd);
  AddInputOptions(cmd, &pa->input);
  cmd->callback([input, pa, source, ka, mq, ia] {
    if (*source == "http") {
      HttpSource src(ia->SourceOptions(pa->input, ka->exit_when_idle));
      Exit(RunPipeline(&src, *pa));
    }
    if (*source == "mqtt") {
      MqttSourceOptions mo = mq->SourceOptions(pa->data_dir, pa->input);
      mo.exit_when_idle_s = ka->exit_when_idle;  // --exit-when-idle (shared with kafka)
      MqttSource src(mo);
      Exit(RunPipeline(&src, *pa));
    }
    if (*source == "kafka") {
      KafkaSource src(ka->SourceOptions());
      Exit(RunPipeline(&src, *pa, &src.options()));
    }
    FileSource src(*input);
    Exit(RunPipeline(&src, *pa));
  });
}

}  // namespace iotpipe::cli
