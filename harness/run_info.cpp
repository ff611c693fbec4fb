#include "harness/run_info.h"

#include <torch/headeronly/version.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstdio>
#include <ctime>
#include <string>

namespace mmi {
namespace {

std::string command_output(const char* command) {
  std::string out;
  FILE* pipe = popen(command, "r");
  if (!pipe) return out;
  std::array<char, 256> buffer{};
  while (fgets(buffer.data(), buffer.size(), pipe)) out += buffer.data();
  pclose(pipe);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

}  // namespace

std::string git_commit() {
  // A copy of the tree without .git (e.g. on a remote benchmark machine) can be told its commit.
  if (const char* given = std::getenv("MMI_GIT_COMMIT")) return given;
  const std::string hash = command_output("git rev-parse --short=12 HEAD 2>/dev/null");
  if (hash.empty()) return "unknown";
  const bool dirty = !command_output("git status --porcelain --untracked-files=no 2>/dev/null").empty();
  return dirty ? hash + "-dirty" : hash;
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string host_name() {
  char host[256] = "host";
  gethostname(host, sizeof host - 1);
  return host;
}

std::string new_run_id() { return utc_timestamp() + "-" + host_name() + "-" + std::to_string(getpid()); }

std::string libtorch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

}  // namespace mmi
