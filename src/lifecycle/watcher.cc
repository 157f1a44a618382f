#include "lifecycle/watcher.h"

#include <spdlog/spdlog.h>

#include "model/model.h"
#include "model/registry.h"

namespace iotpipe::ml {

ModelWatcher::ModelWatcher(std::string model_dir, std::string alias, std::string current_version, LstmMode mode,
                           int threads, Swap swap, std::chrono::milliseconds interval)
    : dir_(std::move(model_dir)),
      alias_(std::move(alias)),
      current_(std::move(current_version)),
      mode_(mode),
      threads_(threads),
      swap_(std::move(swap)),
      interval_(interval) {}

ModelWatcher::~ModelWatcher() { Stop(); }

void ModelWatcher::Start() {
  th_ = std::thread([this] {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      cv_.wait_for(l, interval_, [this] { return stop_; });
      if (stop_) break;
      l.unlock();
      CheckOnce();
      l.lock();
    }
  });
}

void ModelWatcher::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (th_.joinable()) th_.join();
}

std::string ModelWatcher::current() const {
  std::lock_guard<std::mutex> g(mu_);
  return current_;
}

bool ModelWatcher::CheckOnce() {
  Registry reg(dir_);
  std::string v = reg.Alias(alias_);
  {
    std::lock_guard<std::mutex> g(mu_);
    if (v.empty() && allow_clear_ && !current_.empty()) {
      spdlog::info("model watcher: {} cleared (was {})", alias_, current_);
      current_.clear();
      refused_.clear();
      swap_(nullptr);
      swaps_++;
      return true;
    }
    if (v.empty() || v == current_ || v == refused_) return false;
  }
  auto det = LstmDetector::Load(dir_ + "/" + v, mode_, threads_);
  std::lock_guard<std::mutex> g(mu_);
  if (!det.ok()) {
    refused_ = v;
    refusals_++;
    spdlog::error("model watcher: {} now points at {}, which is refused ({}); keeping {}", alias_, v,
                  det.status().message(), current_);
    return false;
  }
  spdlog::info("model watcher: hot swap {} -> {} ({})", current_, v, alias_);
  current_ = v;
  refused_.clear();
  swap_(std::shared_ptr<const Detector>(std::move(det.value())));
  swaps_++;
  return true;
}

}  // namespace iotpipe::ml
