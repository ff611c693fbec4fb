// What a recorded result was produced with: commit, device, library versions, time.
#pragma once

#include <string>

namespace mmi {

std::string git_commit();       // short hash (with "-dirty" when the tree has changes), or "unknown"
std::string utc_timestamp();    // RFC 3339, e.g. 2026-11-26T10:11:12Z
std::string libtorch_version();

}  // namespace mmi
