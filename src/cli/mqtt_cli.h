// MQTT options of `process --source mqtt` (sources/mqtt_source.h).
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "parse/mapping.h"
#include "sources/mqtt_source.h"

namespace iotpipe::cli {

struct MqttArgs {
  MqttSourceOptions o;
  std::vector<std::string> topics;
  void Add(CLI::App* app);
  // The source options for a run storing into data_dir (the WAL goes to data_dir/_mqtt/<client id>),
  // reading payloads through `mapping` (the id member a topic template inserts).
  MqttSourceOptions SourceOptions(const std::string& data_dir, const InputMapping& mapping) const;
};

}  // namespace iotpipe::cli
