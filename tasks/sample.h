// What a task hands to a model: a prompt of ordered segments and what counts as the answer. Tasks know
// nothing of attention or tokens; the model's processor turns segments into tokens and a layout.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "tasks/video.h"

namespace mmi {

struct PromptSegment {
  enum class Kind { kText, kVideo, kImage };
  Kind kind = Kind::kText;
  std::string text;                 // kText
  std::vector<VideoFrame> frames;   // kVideo: the frames in order; kImage: exactly one
};

struct AnswerSpec {
  enum class Kind { kChoice, kShort, kOpen, kCaption };
  Kind kind = Kind::kChoice;
  std::string target;                    // the letter (kChoice) or the answer text
  std::vector<std::string> options;      // kChoice: "A. ...", "B. ..."
  std::vector<std::string> references;   // kCaption
};

struct TaskSample {
  std::string id;
  std::vector<PromptSegment> prompt;
  AnswerSpec answer;
  std::map<std::string, double> grid;  // where the sample sits in its task's grid, e.g. frames, depth
};

}  // namespace mmi
