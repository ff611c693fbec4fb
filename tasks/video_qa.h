// Video-QA and captioning samples from a user's manifest (tasks/manifest.h): each item's video sampled
// uniformly (decoded once through the frame cache), then the question, options and instruction.
#pragma once

#include <string>
#include <vector>

#include "tasks/frame_cache.h"
#include "tasks/manifest.h"
#include "tasks/sample.h"

namespace mmi {

struct VideoQaOptions {
  int64_t frames = 32;      // sampled uniformly over each video
  bool subtitles = false;   // put the item's subtitles before the question (Video-MME "w/ subs")
  std::string choice_instruction = "Answer with the option's letter from the given choices directly.";
  std::string open_instruction = "Answer the question using a single word or phrase.";
  std::string caption_prompt = "Describe this video in detail.";  // when an item gives none
};

// Multiple choice when the item has options (answer spec: the letter), else a short open answer.
std::vector<TaskSample> build_video_qa(const std::vector<VideoQaItem>& items, FrameCache& cache,
                                       const VideoQaOptions& options);
// Detailed description scored against the references (answer spec: kCaption).
std::vector<TaskSample> build_captioning(const std::vector<CaptionItem>& items, FrameCache& cache,
                                         const VideoQaOptions& options);

}  // namespace mmi
