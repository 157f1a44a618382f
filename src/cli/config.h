// Configuration files (TOML, read with toml++) for every subcommand.
//
//   iotpipe run --config iotpipe.toml [flags]      flags given on the command line win over the file
//   iotpipe config check iotpipe.toml             validates every key; exit 2 with one line per problem
//   iotpipe config example [run]                  prints every key of a command, default and help
//
// One table per subcommand, keys are the long option names without dashes ("data-dir" or
// "data_dir"); nested subcommands nest tables ([models.promote]). Example:
//
//   [run]
//   sensors = 1000
//   rate = "max"
//   data-dir = "/var/lib/iotpipe"
//   [process]
//   source = "kafka"
//   brokers = "127.0.0.1:9092"
//   [process.alerts]                 # the alert policy: keys are the --alert-* options without "alert-"
//   min-points = 5                   # (--alert-min-points), and the --alertmanager* options as they are
//   group-by = "device"
//   alertmanager = "http://127.0.0.1:9093"
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace iotpipe::cli {

// toml++ front end for CLI11's configuration machinery (CLI11 applies the values: command-line
// flags win, unknown keys are errors). Writing (config example) is CLI11's TOML writer.
class TomlConfig : public CLI::ConfigBase {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

// Every problem of a configuration file, checked against the options of `app` (a fully registered
// command tree): syntax (with line and column), unknown sections and keys (with a suggestion),
// values that do not convert or validate. Empty = valid.
std::vector<std::string> CheckConfigFile(const std::string& path, CLI::App& app);

// Installs --config on `app` and the `config` subcommand. `make_app` builds a fresh command tree
// (used to check files without touching the real one).
void AddConfig(CLI::App& app, std::function<void(CLI::App&)> register_all);

// If argv has --config FILE (or --config=FILE), checks the file and exits 2 with its problems.
void PrecheckConfig(int argc, char** argv, std::function<void(CLI::App&)> register_all);

}  // namespace iotpipe::cli
