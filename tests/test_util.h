// Helpers for end-to-end tests that run the iotpipe binary.
#pragma once
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

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

}  // namespace iotpipe::testing
