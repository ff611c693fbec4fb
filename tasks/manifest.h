// Video-QA and captioning manifests: one JSON object per line (JSONL) describing a user's local data.
//
// Video-QA (Video-MME, EgoSchema, NExT-QA, PerceptionTest multiple choice; ActivityNet-QA open-ended):
//   {"id": "q1", "video": "videos/a.mp4", "question": "What ...?", "options": ["A. ...", "B. ..."],
//    "answer": "B", "subtitles": "optional text", "duration": "short|medium|long (optional)"}
//   Without "options" the item is open-ended and "answer" is the reference text.
// Captioning (VideoDC):
//   {"id": "c1", "video": "videos/b.mp4", "captions": ["reference one", "reference two"],
//    "prompt": "optional instruction"}
// Relative video paths are resolved against the manifest's folder. Blank lines and lines starting with
// '#' are skipped. Errors name the file and line: "qa.jsonl:7: missing \"question\"".
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace mmi {

struct ManifestError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct VideoQaItem {
  std::string id, video, question;
  std::vector<std::string> options;  // empty: open-ended
  std::string answer;                // a letter for multiple choice, else the reference answer
  std::string subtitles, duration;
  int line = 0;
  bool multiple_choice() const { return !options.empty(); }
};

struct CaptionItem {
  std::string id, video, prompt;
  std::vector<std::string> captions;
  int line = 0;
};

std::vector<VideoQaItem> load_video_qa_manifest(const std::string& path);
std::vector<CaptionItem> load_caption_manifest(const std::string& path);

}  // namespace mmi
