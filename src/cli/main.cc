// iotpipe: real-time analytics and anomaly detection for IoT sensor streams.
#include <spdlog/cfg/env.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "cli/common.h"
#include "cli/config.h"
#include "cli/registry.h"

// The only place the process exits: commands end by returning, or by throwing cli::ExitCode.
int main(int argc, char** argv) try {
  iotpipe::cli::InstallSignalHandlers();  // first: a Ctrl-C during start-up must still drain cleanly
  auto logger = spdlog::stderr_color_mt("iotpipe");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::cfg::load_env_levels();
  CLI::App app{"iotpipe: real-time analytics and anomaly detection for IoT sensor streams"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("iotpipe ") + IOTPIPE_VERSION);
  app.option_defaults()->always_capture_default();  // --help shows every option's default
  iotpipe::cli::RegisterAll(app);
  // A configuration file is checked before anything runs: every problem named with its key and line.
  iotpipe::cli::PrecheckConfig(argc, argv, iotpipe::cli::RegisterAll);
  iotpipe::cli::AddConfig(app, iotpipe::cli::RegisterAll);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    if (rc != 0) iotpipe::cli::SuggestFixes(app, argc, argv);
    return rc;
  }
  return 0;
} catch (const iotpipe::cli::ExitCode& e) {
  std::fflush(stdout);
  return e.code;
}
