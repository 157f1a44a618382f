// librdkafka properties the user gives (--kafka-property k=v, repeatable), applied after iotpipe's own
// settings to every Kafka client the process creates (the consumer, every producer, the admin client),
// so that TLS and SASL (security.protocol, sasl.*, ssl.*) reach all of them. Set once by the command
// line before any client exists; read-only after.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace iotpipe {

inline std::vector<std::pair<std::string, std::string>>& KafkaProperties() {
  static std::vector<std::pair<std::string, std::string>> props;
  return props;
}

}  // namespace iotpipe
