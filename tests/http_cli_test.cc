// End to end: `iotpipe run --http ...` serves /metrics whose counters agree with the run's summary,
// and the dashboard and API answer on the chosen loopback port.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

// A child process, killed (SIGTERM, then SIGKILL) and reaped when it goes out of scope.
struct Child {
  pid_t pid = -1;
  explicit Child(const std::vector<std::string>& argv, const std::string& log) {
    pid = fork();
    if (pid == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
      a.push_back(nullptr);
      execv(a[0], a.data());
      _exit(127);
    }
  }
  int Wait() {
    int st = 0;
    if (pid > 0) waitpid(pid, &st, 0);
    pid = -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  ~Child() {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
      if (waitpid(pid, nullptr, WNOHANG) == pid) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
};

double Sample(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  return -1;
}

TEST(HttpCli, MetricsAgreeWithTheRunSummary) {
  auto dir = fs::temp_directory_path() / ("iotpipe-httpcli-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  int port = FreePort();
  std::string summary = (dir / "summary.json").string();
  Child c({IOTPIPE_BIN,        "run",
           "--sensors",        "200",
           "--events",         "50000",
           "--rate",           "max",
           "--malformed-rate", "0.01",
           "--data-dir",       (dir / "data").string(),
           "--http",           "127.0.0.1:" + std::to_string(port),
           "--http-linger",    "120",
           "--summary-json",   summary,
           "--quiet",          "--no-checkpoint"},
          (dir / "stderr.log").string());
  // The summary is written when the pipeline is done; the server lingers after it.
  for (int i = 0; i < 1200 && !fs::exists(summary); i++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(summary)) << "no summary; stderr in " << (dir / "stderr.log");
  std::ifstream f(summary);
  auto j = nlohmann::json::parse(f);
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(10, 0);
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(Sample(res->body, "iotpipe_records_received_total"), j["sent"].get<double>());
  EXPECT_EQ(Sample(res->body, "iotpipe_readings_stored_total"), j["stored"].get<double>());
  EXPECT_EQ(Sample(res->body, "iotpipe_dead_letters_stored_total"), j["dead_letter"].get<double>());
  EXPECT_EQ(Sample(res->body, "iotpipe_anomalies_predicted_total"), j["predicted_anomalies"].get<double>());
  EXPECT_EQ(Sample(res->body, "iotpipe_anomalies_ground_truth_total"), j["true_anomalies"].get<double>());
  EXPECT_EQ(j["sent"].get<int64_t>(), 50000);
  // The API and the dashboard page answer too.
  auto h = cli.Get("/api/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(nlohmann::json::parse(h->body)["pipeline"], "done");
  auto page = cli.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("uPlot"), std::string::npos);
  // Ctrl-C ends the linger; the process exits cleanly.
  kill(c.pid, SIGINT);
  EXPECT_EQ(c.Wait(), 0);
  fs::remove_all(dir);
}

TEST(HttpCli, NonLoopbackBindWithoutTokenIsRefused) {
  auto dir = fs::temp_directory_path() / ("iotpipe-httpcli-nl-" + std::to_string(getpid()));
  fs::create_directories(dir);
  Child c({IOTPIPE_BIN, "run", "--sensors", "2", "--events", "10", "--rate", "max", "--data-dir",
           (dir / "data").string(), "--http", "0.0.0.0:" + std::to_string(FreePort()), "--quiet", "--no-checkpoint"},
          (dir / "stderr.log").string());
  EXPECT_EQ(c.Wait(), 1);
  std::ifstream f(dir / "stderr.log");
  std::string err((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(err.find("--http-token"), std::string::npos) << err;
  fs::remove_all(dir);
}

}  // namespace
