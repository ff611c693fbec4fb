// A fresh folder under /tmp for a test, removed with its contents when it goes out of scope, and a
// helper to write a file's bytes. POSIX only: std::filesystem misbehaves next to LibTorch.
#pragma once

#include <ftw.h>
#include <stdlib.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tasks/files.h"

namespace mmi::testing {

class TempDir {
 public:
  TempDir() {
    char name[] = "/tmp/mmi_test_XXXXXX";
    if (!mkdtemp(name)) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  ~TempDir() { nftw(path_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return join_path(path_, name); }

 private:
  static int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); }
  std::string path_;
};

// A path named `name` in this test binary's scratch folder: a fresh TempDir shared by every test of the
// run (a file one test generates is there for the next), removed when the binary exits.
inline std::string scratch_file(const std::string& name) {
  static const TempDir scratch;
  return scratch.file(name);
}

inline void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error(path + ": cannot write");
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace mmi::testing
