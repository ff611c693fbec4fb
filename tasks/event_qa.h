// Generated Video-QA: short multiple-choice questions about scripted events painted over haystack
// frames, which a model can only answer by looking across frames:
//   color  a large square flashes up once: which color is it?
//   count   a large square flashes up k times (1 to 4): how many times?
//   motion  a large square crosses the frame: which way does it move?
// Events last whole pairs of frames starting at even frame indices, so that a temporal patch of two
// frames holds all or none of one. A sample is a pure function of (question, F, script number).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/sample.h"

namespace mmi {

struct EventQaOptions {
  std::vector<int64_t> frames = {16, 64};  // haystack frames F per sample, each >= 8
  std::vector<std::string> questions = {"color", "count", "motion"};
  std::vector<int64_t> variants = {0, 1, 2, 3};  // one sample per variant and (F, question)
  int64_t first_script = 0;  // variant v of a cell uses script first_script + v
  std::string preprompt = "Watch the video carefully.";
  std::string instruction = "Answer with the option's letter from the given choices directly.";
};

// The question kinds build_event_qa knows.
const std::vector<std::string>& event_questions();

// One sample per (F, question, variant): [preprompt, the first F haystack frames with the event
// painted in, question + options + instruction]; variant v is script first_script + v.
// haystack holds at least max(F) frames of one size, at least 32 x 32 pixels; throws
// std::invalid_argument otherwise or for an unknown question.
std::vector<TaskSample> build_event_qa(const std::vector<VideoFrame>& haystack, const EventQaOptions& options);

class FrameCache;
// The same from a haystack video sampled at 1 fps, decoded through `cache`. Throws VideoError naming
// the file when it is too short.
std::vector<TaskSample> build_event_qa_from_video(const std::string& haystack_video, FrameCache& cache,
                                                  const EventQaOptions& options);

}  // namespace mmi
