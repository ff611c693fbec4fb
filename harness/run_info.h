// What a recorded result was produced with: commit, device, library versions, time.
#pragma once

#include <string>

namespace mmi {

// Short hash (with "-dirty" when the tree has changes); $MMI_GIT_COMMIT when set; else "unknown".
std::string git_commit();
std::string utc_timestamp();    // RFC 3339, e.g. 2026-11-26T10:11:12Z
std::string libtorch_version();
std::string host_name();
std::string new_run_id();       // unique per process and second: "<UTC time>-<host>-<pid>"

}  // namespace mmi
