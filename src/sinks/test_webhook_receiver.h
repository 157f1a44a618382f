// Test helper: a local webhook receiver on 127.0.0.1 (ephemeral port) that keeps every JSON body
// POSTed to /hook. Used by the alert unit tests and the CLI tests of alert delivery.
#pragma once
#include <httplib.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

namespace iotpipe::testing {

struct WebhookReceiver {
  httplib::Server srv;
  std::thread th;
  int port = 0;
  std::mutex mu;
  std::vector<nlohmann::json> got;
  WebhookReceiver() {
    srv.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard<std::mutex> g(mu);
      got.push_back(nlohmann::json::parse(req.body, nullptr, false));
      res.set_content("{}", "application/json");
    });
    port = srv.bind_to_any_port("127.0.0.1");
    th = std::thread([this] { srv.listen_after_bind(); });
  }
  ~WebhookReceiver() {
    srv.stop();
    th.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/hook"; }
  std::vector<nlohmann::json> Events() {
    std::lock_guard<std::mutex> g(mu);
    return got;
  }
};

}  // namespace iotpipe::testing
