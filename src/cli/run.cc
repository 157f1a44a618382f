// iotpipe run: the embedded pipeline (simulator -> processor -> detector -> Parquet) in one process.
#include <thread>

#include "cli/common.h"
#include "cli/kafka_cli.h"

namespace iotpipe::cli {

void AddRun(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run the embedded pipeline: simulate, process, detect, store");
  auto sim = std::make_shared<SimArgs>();
  auto pa = std::make_shared<PipelineArgs>();
  auto source = std::make_shared<std::string>("embedded");
  auto ka = std::make_shared<KafkaArgs>();
  sim->Add(cmd);
  pa->Add(cmd);
  cmd->add_option("--source", *source, "embedded (simulator in process) or kafka (simulator -> broker -> processor)")
      ->check(CLI::IsMember({"embedded", "kafka"}));
  ka->AddConsumer(cmd);
  cmd->add_option("--partitions", ka->partitions, "Partitions when the topic is created (--source kafka)");
  cmd->callback([sim, pa, source, ka] {
    SimSourceOptions so = sim->Resolve(RealClock::Get());
    if (so.max_events < 0 && so.max_steps < 0 && !pa->quiet)  // say so: a config with every key commented out
      std::fprintf(stderr, "[iotpipe] no --events or --duration: running until Ctrl-C\n");
    if (*source == "kafka") {
      // The producer runs beside the processor; a finite run ends once the consumer is idle.
      Check(EnsureKafkaTopic(ka->brokers, ka->topic, ka->partitions), "kafka");
      bool finite = so.max_events >= 0 || so.max_steps >= 0;
      KafkaSourceOptions ko = ka->SourceOptions();
      if (finite && ko.exit_when_idle_s <= 0) ko.exit_when_idle_s = 5;
      ProduceStats st;
      Status ps;
      std::thread producer([&] { ps = ProduceSimToKafka(so, *ka, g_stop, &st, false); });
      KafkaSource src(ko);
      int rc = RunPipeline(&src, *pa, &src.options());
      g_stop = true;
      producer.join();
      Check(ps, "kafka producer");
      std::fprintf(stderr, "[iotpipe] producer: %lld produced, %lld delivered, %lld failed%s%s\n",
                   static_cast<long long>(st.produced), static_cast<long long>(st.delivered),
                   static_cast<long long>(st.failed), st.failed ? ": " : "", st.first_error.c_str());
      Exit(rc != 0 ? rc : (st.failed ? 1 : 0));
    }
    SimSource src(so, RealClock::Get());
    Exit(RunPipeline(&src, *pa));
  });
}

}  // namespace iotpipe::cli
