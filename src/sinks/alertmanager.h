// Delivery of alerts to Prometheus Alertmanager (API v2: POST /api/v2/alerts, a JSON array of
// {labels, annotations, startsAt, endsAt, generatorURL}).
//
// Contract, as Alertmanager expects from a client (Prometheus does the same):
//  - a firing alert is sent with endsAt = now + 4 x resend interval, and re-sent every resend interval
//    while it fires, so Alertmanager keeps it active and resolves it by itself if iotpipe dies;
//  - a resolved alert is sent once (retried until delivered or until Stop) with endsAt = resolution time;
//  - an alert's identity is its label set: the same labels in a later update replace the earlier one.
// Enqueueing (Fire/Resolve) never blocks the caller: updates go to a bounded queue; when it is full
// the update is dropped and counted. One worker thread posts batches, with timeouts. A failed post is
// counted and logged, at most one line per `log_every_s` with the number of failures not logged.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace iotpipe {

struct AlertmanagerOptions {
  std::string url;          // http://host:port[/prefix] of Alertmanager; /api/v2/alerts is appended
  double resend_s = 60;     // firing alerts are re-sent this often (endsAt = now + 4 x this)
  double timeout_s = 2;     // connect / read / write timeout per post
  size_t queue = 1024;      // pending updates; beyond that they are dropped (counted)
  size_t batch = 256;       // alerts per post at most
  double log_every_s = 30;  // at most one failure line per this many seconds
};

// One alert update. Labels identify the alert in Alertmanager.
struct AmAlert {
  std::map<std::string, std::string> labels, annotations;
  int64_t starts_us = 0;
  int64_t ends_us = -1;  // -1: firing (endsAt computed at each send); else resolved at this time
  std::string generator_url;
};

struct AlertmanagerCounters {
  std::atomic<int64_t> sent{0};      // alert objects accepted by Alertmanager (re-sends included)
  std::atomic<int64_t> failed{0};    // posts that failed (connection, timeout, non-2xx)
  std::atomic<int64_t> dropped{0};   // updates dropped: queue full, or undelivered at Stop
  std::atomic<int64_t> posts{0};     // posts attempted
  std::atomic<int64_t> logged{0};    // failure lines written
  std::atomic<int64_t> unlogged{0};  // failures not written because of the rate limit
  std::atomic<int64_t> firing{0};    // alerts firing now (as sent to Alertmanager)
  std::atomic<int> up{-1};           // last post: 1 ok, 0 failed, -1 none yet
};

// Rate-limited failure log for one receiver: the first failure is written, then at most one line per
// `every_s`, each telling how many failures were not written since the previous line. Thread-safe.
class FailureLog {
 public:
  FailureLog(std::string receiver, double every_s) : receiver_(std::move(receiver)), every_s_(every_s) {}
  // Returns true if a line was written.
  bool Failed(const std::string& what);
  // A success after failures writes one "recovered" line (not rate-limited: it happens once per outage).
  void Succeeded();
  int64_t unlogged_total() const { return unlogged_total_.load(); }

 private:
  std::string receiver_;
  double every_s_;
  std::mutex mu_;
  int64_t last_line_mono_ = 0;
  int64_t unlogged_ = 0;
  bool failing_ = false;
  std::atomic<int64_t> unlogged_total_{0};
};

// A readable reason for a failed cpp-httplib client call (its httplib::Error, as an int).
std::string HttpClientErrorText(int error);

class AlertmanagerClient {
 public:
  explicit AlertmanagerClient(AlertmanagerOptions opt);
  ~AlertmanagerClient();  // Stop(0)
  // Checks the URL and starts the worker.
  Status Start();
  // Never block. Fire: the alert is (still) firing; Resolve: it ended at a.ends_us.
  void Fire(AmAlert a);
  void Resolve(AmAlert a);
  // Sends what is queued (and the resolutions of the alerts still firing if `resolve_firing`) for at
  // most drain_s, then stops the worker. Undelivered updates are counted as dropped.
  void Stop(double drain_s, bool resolve_firing = false);
  const AlertmanagerCounters& counters() const { return c_; }
  const std::string& url() const { return opt_.url; }

  // The JSON body of one post (exposed for tests): endsAt of firing alerts is now + 4 x resend.
  static std::string Body(const std::vector<AmAlert>& alerts, int64_t now_us, double resend_s);
  static std::string Key(const AmAlert& a);  // identity: the sorted label set

 private:
  void Enqueue(AmAlert a);
  void Loop();
  bool Post(const std::string& body, std::string* err);

  AlertmanagerOptions opt_;
  std::string host_, path_;
  AlertmanagerCounters c_;
  FailureLog log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AmAlert> q_;                    // updates from the pipeline
  std::map<std::string, AmAlert> firing_;    // worker: what is firing, for re-sends
  std::map<std::string, AmAlert> resolved_;  // worker: resolutions not yet delivered
  bool stop_ = false, resolve_firing_ = false;
  int64_t deadline_mono_ = 0;
  std::thread th_;
};

}  // namespace iotpipe
