#include "tasks/video_qa.h"

namespace mmi {
namespace {

PromptSegment video_segment(const std::string& path, FrameCache& cache, int64_t frames) {
  PromptSegment video{PromptSegment::Kind::kVideo, "", {}};
  video.frames = cache.frames(path, uniform_timestamps(probe_video(path), frames));
  return video;
}

PromptSegment text_segment(std::string text) { return PromptSegment{PromptSegment::Kind::kText, std::move(text), {}}; }

}  // namespace

std::vector<TaskSample> build_video_qa(const std::vector<VideoQaItem>& items, FrameCache& cache,
                                       const VideoQaOptions& o) {
  std::vector<TaskSample> samples;
  for (const VideoQaItem& item : items) {
    TaskSample s;
    s.id = item.id;
    s.prompt.push_back(video_segment(item.video, cache, o.frames));
    std::string text;
    if (o.subtitles && !item.subtitles.empty()) text += "This video's subtitles are listed below:\n" + item.subtitles + "\n";
    text += item.question;
    if (item.multiple_choice()) {
      for (const std::string& option : item.options) text += "\n" + option;
      text += "\n" + o.choice_instruction;
      s.answer.kind = AnswerSpec::Kind::kChoice;
      s.answer.options = item.options;
    } else {
      text += "\n" + o.open_instruction;
      s.answer.kind = AnswerSpec::Kind::kShort;
    }
    s.answer.target = item.answer;
    s.prompt.push_back(text_segment(text));
    samples.push_back(std::move(s));
  }
  return samples;
}

std::vector<TaskSample> build_captioning(const std::vector<CaptionItem>& items, FrameCache& cache,
                                         const VideoQaOptions& o) {
  std::vector<TaskSample> samples;
  for (const CaptionItem& item : items) {
    TaskSample s;
    s.id = item.id;
    s.prompt = {video_segment(item.video, cache, o.frames), text_segment(item.prompt.empty() ? o.caption_prompt : item.prompt)};
    s.answer.kind = AnswerSpec::Kind::kCaption;
    s.answer.references = item.captions;
    samples.push_back(std::move(s));
  }
  return samples;
}

}  // namespace mmi
