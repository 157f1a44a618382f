// iotpipe bench --only kafka: produce / consume-and-store / both through a real broker.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

namespace iotpipe::cli {

// Row(what, value, unit, json key) prints a table row and records the key in the report.
using BenchRow = std::function<void(const std::string&, double, const std::string&, const std::string&)>;

// Runs the three Kafka figures on fresh topics if a broker answers at `brokers` (else notes why
// they were skipped in j["kafka_skipped"]). Records: `events` per run; `tmp` holds the stores.
void KafkaBench(const std::string& brokers, int64_t events, const std::string& tmp, const BenchRow& row,
                nlohmann::json& j);

}  // namespace iotpipe::cli
