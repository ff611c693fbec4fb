// Small POSIX file helpers. std::filesystem is avoided on purpose: the LibTorch shared library exports
// its own copies of some std::filesystem symbols, and a binary linked against it may call those
// (remove_all crashed that way in our tests).
#pragma once

#include <cstdint>
#include <string>

namespace mmi {

struct FileIdentity {
  std::string absolute_path;
  int64_t size = 0;
  int64_t modified_ns = 0;
};

// Throws std::runtime_error naming the file when it cannot be read.
FileIdentity file_identity(const std::string& path);
bool file_exists(const std::string& path);
std::string read_file(const std::string& path);  // the whole file; throws naming it when unreadable
void make_directories(const std::string& path);  // mkdir -p; throws naming the folder
std::string parent_directory(const std::string& path);  // "." for a bare file name
std::string join_path(const std::string& directory, const std::string& name);  // name if absolute

}  // namespace mmi
