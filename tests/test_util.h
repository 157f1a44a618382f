// Helpers for end-to-end tests that run the iotpipe binary.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace iotpipe::testing {

struct CmdResult {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs a shell command line; captures stdout and stderr.
inline CmdResult Sh(const std::string& cmd) {
  static int n = 0;
  std::string errf =
      std::filesystem::temp_directory_path() / ("iotpipe_err_" + std::to_string(getpid()) + "_" + std::to_string(n++));
  CmdResult r;
  FILE* p = popen((cmd + " 2>" + errf).c_str(), "r");
  if (!p) return r;
  std::array<char, 65536> buf;
  size_t k;
  while ((k = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), k);
  int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  if (FILE* e = fopen(errf.c_str(), "r")) {
    while ((k = fread(buf.data(), 1, buf.size(), e)) > 0) r.err.append(buf.data(), k);
    fclose(e);
  }
  std::filesystem::remove(errf);
  return r;
}

inline std::string Bin() { return IOTPIPE_BIN; }

// A fresh temporary directory removed at scope exit.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() / ("iotpipe_" + tag + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str() const { return path.string(); }
};

// Runs `iotpipe query --format json SQL` and returns the parsed rows.
inline nlohmann::json Query(const std::string& data_dir, const std::string& sql) {
  CmdResult r = Sh(Bin() + " query --format json --data-dir " + data_dir + " \"" + sql + "\"");
  EXPECT_EQ(r.code, 0) << r.err;
  return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::array();
}

// ---- Long-running children (Kafka and MQTT integration tests) ----

inline std::string Env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "";
}

// The source tree (scripts/, tests/): IOTPIPE_SOURCE_DIR (scripts/test sets it) or the one built from.
inline std::string SourceDir() {
  std::string s = Env("IOTPIPE_SOURCE_DIR");
  return s.empty() ? IOTPIPE_SOURCE_DIR : s;
}

inline std::string Unique(const std::string& base) {
  static int n = 0;
  auto t = std::chrono::system_clock::now().time_since_epoch().count();
  return base + "-" + std::to_string(getpid()) + "-" + std::to_string(t % 100000000) + "-" + std::to_string(n++);
}

// A child process running a command, output to a log file; killed (group) if still running at the end.
// With stdin_pipe, the child's standard input is a pipe written through Write() and closed by CloseStdin().
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log, const std::vector<std::string>& env = {},
        bool stdin_pipe = false) {
    int fds[2] = {-1, -1};
    if (stdin_pipe && pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      if (stdin_pipe) {
        dup2(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
      }
      FILE* f = std::fopen(log.c_str(), "ab");
      if (f) {
        dup2(fileno(f), 1);
        dup2(fileno(f), 2);
      }
      for (auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execvp(a[0], a.data());
      _exit(127);
    }
    if (stdin_pipe) {
      close(fds[0]);
      in_ = fds[1];
    }
  }
  ~Child() {
    CloseStdin();
    if (pid_ > 0 && rc_ == kRunning) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  bool Write(const std::string& s) {
    size_t done = 0;
    while (in_ >= 0 && done < s.size()) {
      ssize_t n = write(in_, s.data() + done, s.size() - done);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return in_ >= 0;
  }
  void CloseStdin() {
    if (in_ >= 0) close(in_);
    in_ = -1;
  }
  // Exit code, -signal, or kTimeout on timeout (then it is killed).
  int Wait(double timeout_s) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
    while (rc_ == kRunning) {
      int st = 0;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        rc_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
        break;
      }
      if (std::chrono::steady_clock::now() > end) {
        kill(-pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        rc_ = kTimeout;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return rc_;
  }
  // Still running (does not wait, does not kill).
  bool Running() {
    if (rc_ != kRunning) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) rc_ = WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
    return rc_ == kRunning;
  }
  void Kill(int sig = SIGKILL) { kill(pid_, sig); }
  pid_t pid() const { return pid_; }
  static constexpr int kRunning = -1000, kTimeout = -1001;

 private:
  pid_t pid_ = -1;
  int rc_ = kRunning;
  int in_ = -1;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Waits (bounded) until `text` occurs `occurrences` times in the file at path.
inline bool WaitForText(const std::string& path, const std::string& text, double timeout_s, size_t occurrences = 1) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < end) {
    std::string s = ReadAll(path);
    size_t n = 0, pos = 0;
    while ((pos = s.find(text, pos)) != std::string::npos) {
      n++;
      pos += text.size();
    }
    if (n >= occurrences) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace iotpipe::testing
