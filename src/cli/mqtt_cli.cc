#include "cli/mqtt_cli.h"

#include <cctype>

namespace iotpipe::cli {

void MqttArgs::Add(CLI::App* app) {
  o.url = "tcp://127.0.0.1:1883";
  app->add_option("--mqtt-url", o.url, "MQTT broker (--source mqtt): tcp://host:1883, ssl://host:8883");
  app->add_option("--mqtt-client-id", o.client_id,
                  "MQTT client id: names the persistent session and the WAL; one per processor");
  app->add_option("--mqtt-topic", topics,
                  "Topic filter to subscribe to (repeatable; + and # wildcards; $share/<group>/<filter> splits a "
                  "stream between processors). Default sensors/#");
  app->add_option("--mqtt-qos", o.qos, "Subscription QoS (1: at least once from the broker, made exactly once here)")
      ->check(CLI::Range(0, 2));
  app->add_flag("--mqtt-clean-start", o.clean_start,
                "Start a new session (default: persistent; the broker keeps what arrives while we are away)");
  app->add_option("--mqtt-session-expiry", o.session_expiry_s,
                  "Seconds the broker keeps the session after a disconnect")
      ->check(CLI::Range(0, 2147483647));
  app->add_option("--mqtt-username", o.username, "MQTT user name");
  app->add_option("--mqtt-password", o.password, "MQTT password (or IOTPIPE_MQTT_PASSWORD)")
      ->envname("IOTPIPE_MQTT_PASSWORD");
  app->add_option("--mqtt-ca-file", o.ca_file, "TLS: CA certificates (PEM) that sign the broker's certificate");
  app->add_option("--mqtt-cert-file", o.cert_file, "TLS: client certificate (PEM)");
  app->add_option("--mqtt-key-file", o.key_file, "TLS: client private key (PEM)");
  app->add_flag("--mqtt-tls-insecure", o.tls_insecure, "TLS: do not verify the broker's certificate");
  app->add_option("--mqtt-topic-template", o.topic_template,
                  "Where the topic carries the id, e.g. sensors/{device}/{quantity} (id device/quantity) or "
                  "sensors/{sensor}; plain-number payloads become readings stamped with their arrival time");
  app->add_flag("--mqtt-fsync-each", o.fsync_each,
                "fdatasync the WAL before each acknowledgement (survives power loss; ~1 ms per message). Default: "
                "written before the acknowledgement (survives a killed process), synced every second");
  app->add_option("--mqtt-keepalive", o.keepalive_s, "Keep-alive interval in seconds")->check(CLI::Range(5, 3600));
}

MqttSourceOptions MqttArgs::SourceOptions(const std::string& data_dir, const InputMapping& mapping) const {
  MqttSourceOptions r = o;
  if (!topics.empty()) r.topics = topics;
  std::string safe;
  for (char c : r.client_id) safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  r.wal_dir = data_dir + "/_mqtt/" + (safe.empty() ? "client" : safe);
  if (auto m = ResolveMapping(mapping); m.ok()) {
    const std::string& id = m.value().id;  // a top-level member only
    if (id.size() > 1 && id[0] == '/' && id.find('/', 1) == std::string::npos) r.id_key = id.substr(1);
    r.separator = m.value().separator;
  }
  return r;
}

}  // namespace iotpipe::cli
