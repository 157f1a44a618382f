#include "sinks/alertmanager.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/timeutil.h"
#include "sinks/alerts.h"

namespace iotpipe {

std::string HttpClientErrorText(int error) {
  switch (static_cast<httplib::Error>(error)) {
    case httplib::Error::Connection:
      return "cannot connect (refused or unreachable)";
    case httplib::Error::ConnectionTimeout:
      return "connect timed out";
    case httplib::Error::Read:
      return "no answer (read failed or timed out)";
    case httplib::Error::Write:
      return "sending failed (write failed or timed out)";
    default:
      return "error " + httplib::to_string(static_cast<httplib::Error>(error));
  }
}

// ---------------------------------------------------------------------------------------------
// FailureLog

bool FailureLog::Failed(const std::string& what) {
  std::lock_guard<std::mutex> g(mu_);
  const int64_t now = MonoMicros();
  failing_ = true;
  if (last_line_mono_ != 0 && now - last_line_mono_ < static_cast<int64_t>(every_s_ * 1e6)) {
    unlogged_++;
    unlogged_total_++;
    return false;
  }
  if (unlogged_ > 0)
    spdlog::warn("alerts: delivery to {} failed: {} ({} more failure(s) not logged in the last {:.0f} s)", receiver_,
                 what, unlogged_, every_s_);
  else
    spdlog::warn("alerts: delivery to {} failed: {}", receiver_, what);
  last_line_mono_ = now;
  unlogged_ = 0;
  return true;
}

void FailureLog::Succeeded() {
  std::lock_guard<std::mutex> g(mu_);
  if (!failing_) return;
  failing_ = false;
  spdlog::info("alerts: delivery to {} works again{}", receiver_,
               unlogged_ ? " (" + std::to_string(unlogged_) + " failure(s) not logged)" : std::string());
  unlogged_ = 0;
  last_line_mono_ = 0;
}

// ---------------------------------------------------------------------------------------------
// AlertmanagerClient

AlertmanagerClient::AlertmanagerClient(AlertmanagerOptions opt)
    : opt_(std::move(opt)), log_("alertmanager " + opt_.url, opt_.log_every_s) {}

AlertmanagerClient::~AlertmanagerClient() { Stop(0); }

Status AlertmanagerClient::Start() {
  std::string prefix;
  Status s = SplitHttpUrl(opt_.url, &host_, &prefix);
  if (!s.ok()) return s;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  path_ = prefix + "/api/v2/alerts";
  if (opt_.resend_s <= 0) return Status::InvalidArgument("alertmanager resend interval must be > 0");
  th_ = std::thread([this] { Loop(); });
  return Status::OK();
}

std::string AlertmanagerClient::Key(const AmAlert& a) {
  std::string k;
  for (const auto& [n, v] : a.labels) k += n + '\x1f' + v + '\x1e';  // std::map: sorted
  return k;
}

std::string AlertmanagerClient::Body(const std::vector<AmAlert>& alerts, int64_t now_us, double resend_s) {
  nlohmann::json arr = nlohmann::json::array();
  for (const AmAlert& a : alerts) {
    // Alertmanager rejects a batch holding an alert that starts after it ends: a start ahead of the
    // wall clock (event time of a producer whose clock runs fast) is sent as now.
    const int64_t starts = std::min(a.starts_us, now_us);
    const int64_t ends =
        a.ends_us < 0 ? now_us + static_cast<int64_t>(4 * resend_s * 1e6) : std::max(a.ends_us, starts);
    nlohmann::json j = {{"labels", a.labels},
                        {"annotations", a.annotations},
                        {"startsAt", FormatIsoMicros(starts)},
                        {"endsAt", FormatIsoMicros(ends)}};
    if (!a.generator_url.empty()) j["generatorURL"] = a.generator_url;
    arr.push_back(std::move(j));
  }
  return arr.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void AlertmanagerClient::Fire(AmAlert a) {
  a.ends_us = -1;
  Enqueue(std::move(a));
}

void AlertmanagerClient::Resolve(AmAlert a) {
  if (a.ends_us < 0) a.ends_us = RealClock::Get()->NowMicros();
  Enqueue(std::move(a));
}

// To the sender thread, or counted as dropped when it is not running or its queue is full.
void AlertmanagerClient::Enqueue(AmAlert a) {
  std::lock_guard<std::mutex> g(mu_);
  if (!th_.joinable() || stop_ || q_.size() >= opt_.queue) {
    c_.dropped++;
    return;
  }
  q_.push_back(std::move(a));
  cv_.notify_one();
}

bool AlertmanagerClient::Post(const std::string& body, std::string* err) {
  c_.posts++;
  httplib::Client cli(host_);
  auto to = std::chrono::microseconds(static_cast<int64_t>(opt_.timeout_s * 1e6));
  cli.set_connection_timeout(to);
  cli.set_read_timeout(to);
  cli.set_write_timeout(to);
  auto res = cli.Post(path_, body, "application/json");
  if (!res) {
    *err = "POST " + host_ + path_ + ": " + HttpClientErrorText(static_cast<int>(res.error()));
    return false;
  }
  if (res->status < 200 || res->status >= 300) {
    std::string b = res->body.substr(0, 200);
    while (!b.empty() && (b.back() == '\n' || b.back() == '\r')) b.pop_back();
    *err = "POST " + host_ + path_ + ": HTTP " + std::to_string(res->status) + (b.empty() ? "" : " " + b);
    return false;
  }
  return true;
}

void AlertmanagerClient::Loop() {
  const auto resend = std::chrono::microseconds(static_cast<int64_t>(opt_.resend_s * 1e6));
  int64_t next_resend = MonoMicros() + resend.count();
  int64_t retry_at = 0;  // after a failure: when to try everything again
  double backoff_s = 0.5;
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    const int64_t wake = retry_at ? retry_at : next_resend;  // while failing: the backoff, not the re-send
    if (stop_ && retry_at) {  // stopping with undelivered updates: wait for the retry, not for a wake-up
      const int64_t until = std::min(retry_at, deadline_mono_ + 1);
      cv_.wait_for(lk, std::chrono::microseconds(std::max<int64_t>(0, until - MonoMicros())), [] { return false; });
    } else {
      cv_.wait_for(lk, std::chrono::microseconds(std::max<int64_t>(0, wake - MonoMicros())),
                   [&] { return stop_ || !q_.empty(); });
    }
    const bool stopping = stop_;
    const int64_t now = MonoMicros();
    if (stopping && now > deadline_mono_) {
      c_.dropped += static_cast<int64_t>(q_.size() + resolved_.size());
      q_.clear();
      resolved_.clear();
      return;
    }
    std::deque<AmAlert> updates;
    updates.swap(q_);
    const bool resolve_all = stopping && resolve_firing_;
    lk.unlock();

    std::map<std::string, const AmAlert*> send;  // what this round posts, by identity
    for (AmAlert& u : updates) {
      std::string k = Key(u);
      if (u.ends_us < 0) {
        resolved_.erase(k);
        firing_[k] = std::move(u);
      } else {
        firing_.erase(k);
        resolved_[k] = std::move(u);
      }
      send[k] = nullptr;
    }
    if (resolve_all) {
      const int64_t t = RealClock::Get()->NowMicros();
      for (auto& [k, a] : firing_) {
        a.ends_us = t;
        resolved_[k] = std::move(a);
        send[k] = nullptr;
      }
      firing_.clear();
    }
    c_.firing = static_cast<int64_t>(firing_.size());
    const bool everything = retry_at ? now >= retry_at : now >= next_resend;
    if (everything) next_resend = now + resend.count();
    if (retry_at && !everything) send.clear();  // the receiver is down: new updates wait for the retry
    if (everything) {
      if (!stopping)  // at Stop, what fires stays as last sent: Alertmanager resolves it at its endsAt
        for (auto& [k, a] : firing_) send[k] = nullptr;
      for (auto& [k, a] : resolved_) send[k] = nullptr;
    }
    std::vector<AmAlert> batch;
    std::vector<std::string> keys;
    bool failed = false;
    auto flush = [&] {
      if (batch.empty()) return;
      std::string err;
      if (Post(Body(batch, RealClock::Get()->NowMicros(), opt_.resend_s), &err)) {
        c_.sent += static_cast<int64_t>(batch.size());
        c_.up = 1;
        log_.Succeeded();
        for (auto& k : keys) resolved_.erase(k);
      } else {
        c_.failed++;
        c_.up = 0;
        if (log_.Failed(err)) c_.logged++;
        c_.unlogged = log_.unlogged_total();
        failed = true;
      }
      batch.clear();
      keys.clear();
    };
    for (auto& [k, unused] : send) {
      if (failed) break;  // the receiver is down: the rest waits for the retry
      auto f = firing_.find(k);
      if (f != firing_.end()) {
        batch.push_back(f->second);
      } else if (auto r = resolved_.find(k); r != resolved_.end()) {
        batch.push_back(r->second);
      } else {
        continue;
      }
      keys.push_back(k);
      if (batch.size() >= opt_.batch) flush();
    }
    if (!failed) flush();
    if (failed) {
      retry_at = MonoMicros() + static_cast<int64_t>(backoff_s * 1e6);
      backoff_s = std::min(backoff_s * 2, std::max(0.5, opt_.resend_s));
    } else if (everything || !send.empty()) {
      retry_at = 0;
      backoff_s = 0.5;
    }
    lk.lock();
    if (stopping && q_.empty() && resolved_.empty() && !failed) return;
  }
}

void AlertmanagerClient::Stop(double drain_s, bool resolve_firing) {
  if (!th_.joinable()) return;
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
    resolve_firing_ = resolve_firing;
    deadline_mono_ = MonoMicros() + static_cast<int64_t>(drain_s * 1e6);
  }
  cv_.notify_all();
  th_.join();
}

}  // namespace iotpipe
