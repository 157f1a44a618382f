#include "cli/resources.h"

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace iotpipe::cli {

namespace fs = std::filesystem;

static std::string ExeDir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

std::string FindWebDir(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("IOTPIPE_WEB_DIR"); env && *env) return env;
  const std::string exe = ExeDir();
  std::vector<std::string> c = {exe + "/../share/iotpipe/web", exe + "/share/iotpipe/web"};
  for (auto& d : c)
    if (fs::exists(d + "/index.html")) return fs::path(d).lexically_normal().string();
  return fs::path(c.front()).lexically_normal().string();
}

std::string FindUplotDir(const std::string& web_dir) {
  // Lexically: in the build tree web/ is a link into the source tree, and uplot/ is its sibling.
  std::vector<std::string> c = {fs::path(web_dir + "/../uplot").lexically_normal().string(),
                                web_dir + "/../.deps/node/node_modules/uplot/dist"};
  for (auto& d : c)
    if (fs::exists(d + "/uPlot.iife.min.js")) return d;
  return c.front();
}

}  // namespace iotpipe::cli
