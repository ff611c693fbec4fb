#include "tasks/manifest.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <functional>
#include <set>

#include "tasks/files.h"

namespace mmi {
namespace {

using nlohmann::json;

// Calls parse(object, where) for every JSON line; `where` is "file:line".
void for_each_line(const std::string& path, const std::function<void(const json&, const std::string&, int)>& parse) {
  std::ifstream in(path);
  if (!in) throw ManifestError(path + ": cannot open the manifest");
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    const size_t start = text.find_first_not_of(" \t\r");
    if (start == std::string::npos || text[start] == '#') continue;
    const std::string where = path + ":" + std::to_string(line);
    json object;
    try {
      object = json::parse(text);
    } catch (const json::parse_error& e) {
      throw ManifestError(where + ": malformed JSON (" + std::string(e.what()) + ")");
    }
    if (!object.is_object()) throw ManifestError(where + ": expected a JSON object");
    parse(object, where, line);
  }
}

std::string text_field(const json& o, const char* key, const std::string& where, bool required,
                       bool number_ok = false) {
  auto it = o.find(key);
  if (it == o.end() || it->is_null()) {
    if (required) throw ManifestError(where + ": missing \"" + key + "\"");
    return "";
  }
  if (number_ok && it->is_number_integer()) return it->dump();  // numeric ids
  if (!it->is_string()) throw ManifestError(where + ": \"" + key + "\" must be a string");
  return it->get<std::string>();
}

std::vector<std::string> text_list(const json& o, const char* key, const std::string& where, bool required) {
  auto it = o.find(key);
  if (it == o.end()) {
    if (required) throw ManifestError(where + ": missing \"" + key + "\"");
    return {};
  }
  if (!it->is_array()) throw ManifestError(where + ": \"" + key + "\" must be a list of strings");
  std::vector<std::string> out;
  for (const auto& item : *it) {
    if (!item.is_string()) throw ManifestError(where + ": \"" + key + "\" must be a list of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::string resolve_video(const std::string& manifest, const std::string& video) {
  return join_path(parent_directory(manifest), video);
}

void check_unique(std::set<std::string>& ids, const std::string& id, const std::string& where) {
  if (!ids.insert(id).second) throw ManifestError(where + ": duplicate id \"" + id + "\"");
}

}  // namespace

std::vector<VideoQaItem> load_video_qa_manifest(const std::string& path) {
  std::vector<VideoQaItem> items;
  std::set<std::string> ids;
  for_each_line(path, [&](const json& o, const std::string& where, int line) {
    VideoQaItem item;
    item.line = line;
    item.id = text_field(o, "id", where, true, true);
    item.video = resolve_video(path, text_field(o, "video", where, true));
    item.question = text_field(o, "question", where, true);
    item.options = text_list(o, "options", where, false);
    item.answer = text_field(o, "answer", where, true);
    item.subtitles = text_field(o, "subtitles", where, false);
    item.duration = text_field(o, "duration", where, false);
    if (item.multiple_choice()) {
      const bool letter = item.answer.size() == 1 && item.answer[0] >= 'A' &&
                          item.answer[0] < static_cast<char>('A' + item.options.size());
      if (!letter) {
        throw ManifestError(where + ": \"answer\" must be one of the option letters A.." +
                            std::string(1, static_cast<char>('A' + item.options.size() - 1)) + ", got \"" +
                            item.answer + "\"");
      }
    }
    check_unique(ids, item.id, where);
    items.push_back(std::move(item));
  });
  return items;
}

std::vector<CaptionItem> load_caption_manifest(const std::string& path) {
  std::vector<CaptionItem> items;
  std::set<std::string> ids;
  for_each_line(path, [&](const json& o, const std::string& where, int line) {
    CaptionItem item;
    item.line = line;
    item.id = text_field(o, "id", where, true, true);
    item.video = resolve_video(path, text_field(o, "video", where, true));
    item.prompt = text_field(o, "prompt", where, false);
    item.captions = text_list(o, "captions", where, true);
    if (item.captions.empty()) throw ManifestError(where + ": \"captions\" needs at least one reference");
    check_unique(ids, item.id, where);
    items.push_back(std::move(item));
  });
  return items;
}

}  // namespace mmi
