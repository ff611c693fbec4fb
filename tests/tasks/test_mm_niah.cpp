// MM-NIAH: text needles and short-answer needles, the prose haystack, and the interleaved grid: the
// text share holds for several token counters, the needles land where asked, the frames keep their
// order and the question comes last.
#include <stdlib.h>

#include <cmath>
#include <set>
#include <sstream>

#include "tasks/files.h"
#include "tasks/frame_cache.h"
#include "tasks/mm_niah.h"
#include "tasks/needles.h"
#include "tasks/niah.h"
#include "tasks/prose.h"
#include "tasks/video_writer.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using namespace mmi;
using mmi::testing::TempDir;
using mmi::testing::write_file;

namespace {

const std::vector<std::string> kNeedles = {"image_choice", "image_short", "text_short",
                                           "text_choice"};

std::vector<VideoFrame> haystack(int64_t n, int width, int height) {
  std::vector<VideoFrame> frames(n);
  for (int64_t k = 0; k < n; ++k) {
    frames[k].width = width;
    frames[k].height = height;
    frames[k].timestamp_s = static_cast<double>(k);
    frames[k].rgb.assign(static_cast<size_t>(width) * height * 3, static_cast<uint8_t>(k));
  }
  return frames;
}

// 300 paragraphs of 1 to 9 sentences of 4 to 14 words: from about 25 to 700 bytes.
ProseHaystack synthetic_prose() {
  const char* const words[] = {"river",  "stone",  "lantern", "morning", "quiet",
                               "garden", "letter", "window",  "travel",  "harbour",
                               "candle", "forest", "market"};
  ProseHaystack prose{"synthetic", {}};
  for (int k = 0; k < 300; ++k) {
    std::string paragraph;
    for (int s = 0; s < k * 7 % 9 + 1; ++s) {
      std::string sentence = "Paragraph " + std::to_string(k) + " says";
      for (int w = 0; w < (k + s) % 11 + 2; ++w)
        sentence += std::string(" ") + words[(k + s + w) % 13];
      paragraph += (paragraph.empty() ? "" : " ") + sentence + ".";
    }
    prose.paragraphs.push_back(paragraph);
  }
  return prose;
}

int64_t count_words(const std::string& text) {
  std::istringstream in(text);
  int64_t words = 0;
  for (std::string word; in >> word;) ++words;
  return words;
}

std::vector<VideoFrame> video_frames(const TaskSample& s) {
  std::vector<VideoFrame> frames;
  for (const PromptSegment& segment : s.prompt) {
    if (segment.kind == PromptSegment::Kind::kVideo) {
      frames.insert(frames.end(), segment.frames.begin(), segment.frames.end());
    }
  }
  return frames;
}

// The haystack's paragraphs in document order: the text segments between the pre-prompt and the
// question, split at blank lines.
std::vector<std::string> document_paragraphs(const TaskSample& s) {
  std::vector<std::string> paragraphs;
  for (size_t i = 1; i + 1 < s.prompt.size(); ++i) {
    if (s.prompt[i].kind != PromptSegment::Kind::kText) continue;
    const std::string& text = s.prompt[i].text;
    REQUIRE(text.size() > 2);
    REQUIRE(text.front() == '\n');
    REQUIRE(text.back() == '\n');
    const std::string body = text.substr(1, text.size() - 2);
    for (size_t begin = 0, end;; begin = end + 2) {
      end = body.find("\n\n", begin);
      paragraphs.push_back(body.substr(begin, end - begin));
      if (end == std::string::npos) break;
    }
  }
  return paragraphs;
}

// The realised share recomputed from the prompt: haystack text tokens over those plus frame tokens.
double text_share(const TaskSample& s, const MmNiahOptions& o) {
  int64_t text = 0, frames = 0;
  for (size_t i = 1; i + 1 < s.prompt.size(); ++i) {
    if (s.prompt[i].kind == PromptSegment::Kind::kText) text += o.count_tokens(s.prompt[i].text);
    frames += static_cast<int64_t>(s.prompt[i].frames.size());
  }
  return static_cast<double>(text) / static_cast<double>(text + frames * o.tokens_per_frame);
}

MmNiahOptions grid_options(const std::string& needle) {
  MmNiahOptions o;
  o.frames = {8, 16, 48};
  o.depths = {0.0, 0.5, 1.0};
  o.needle = needle;
  return o;
}

}  // namespace

TEST_CASE("text needles hide a code; word needles ask for the drawn word", "[mmniah]") {
  std::set<std::string> codes, sentences;
  for (int64_t k = 0; k < 40; ++k) {
    const TextNeedle n = make_text_needle(k);
    REQUIRE(n.code.size() == 4);
    REQUIRE(codes.insert(n.code).second);
    REQUIRE(sentences.insert(n.sentence).second);
    REQUIRE(n.sentence.find(" is " + n.code + ".") != std::string::npos);
    // "What is the secret code of X?" asks for "The secret code of X is <code>.".
    const std::string subject = n.question.substr(9, n.question.size() - 10);
    REQUIRE(n.sentence == "T" + subject + " is " + n.code + ".");
    REQUIRE(n.options.size() == 4);
    REQUIRE(std::set<std::string>(n.options.begin(), n.options.end()).size() == 4);
    REQUIRE(n.options[n.answer[0] - 'A'] == n.answer + ". " + n.code);
    REQUIRE(make_text_needle(k).sentence == n.sentence);  // deterministic
  }
  REQUIRE(make_text_needle(0).question == "What is the secret code of the blue lighthouse?");
  for (int64_t k = 0; k < 8; ++k) {
    const Needle word = make_word_needle(k, 96, 64), choice = make_needle(k, 96, 64);
    REQUIRE(word.image.rgb == choice.image.rgb);
    REQUIRE(word.options.empty());
    REQUIRE(word.answer == choice.word);
    REQUIRE(word.question.find("What word is written") != std::string::npos);
  }
}

TEST_CASE("MM-NIAH keeps the text share within 3 points for several token counters", "[mmniah]") {
  const std::vector<VideoFrame> hay = haystack(48, 16, 12);
  const ProseHaystack prose = synthetic_prose();
  const std::vector<std::pair<std::string, TokenCounter>> counters = {
      {"bytes / 4", estimate_tokens}, {"words", count_words}};
  for (const auto& [name, counter] : counters) {
    for (double share : {0.1, 0.25, 0.5}) {
      for (const std::string& needle : kNeedles) {
        MmNiahOptions o = grid_options(needle);
        o.count_tokens = counter;
        o.text_share = share;
        o.tokens_per_frame = name == "words" ? 64 : 128;
        for (const TaskSample& s : build_mmniah(hay, prose, o)) {
          INFO(name << " " << s.id << " share " << s.grid.at("text_share"));
          REQUIRE(s.grid.at("text_share") == Approx(text_share(s, o)));
          REQUIRE(std::abs(s.grid.at("text_share") - share) <= 0.03);
        }
      }
    }
  }
}

TEST_CASE("MM-NIAH puts the image needle at the requested frame, in a prompt in order",
          "[mmniah]") {
  const std::vector<VideoFrame> hay = haystack(48, 16, 12);
  for (const std::string& needle : kNeedles) {
    MmNiahOptions o = grid_options(needle);
    o.first_needle = 3;
    const std::vector<TaskSample> samples = build_mmniah(hay, synthetic_prose(), o);
    REQUIRE(samples.size() == 9);
    for (size_t k = 0; k < samples.size(); ++k) {
      const TaskSample& s = samples[k];
      const int64_t f = static_cast<int64_t>(s.grid.at("frames"));
      const double depth = s.grid.at("depth");
      std::ostringstream id;
      id << "mmniah-" << needle << "-F" << f << "-d" << depth;
      REQUIRE(s.id == id.str());
      REQUIRE(s.prompt.front().text == o.preprompt);
      for (size_t i = 1; i < s.prompt.size(); ++i) {  // runs and texts alternate
        REQUIRE((s.prompt[i].kind != s.prompt[i - 1].kind || i == 1));
      }
      const PromptSegment& question = s.prompt.back();  // the question comes last
      REQUIRE(question.kind == PromptSegment::Kind::kText);
      const bool image = needle.rfind("image", 0) == 0,
                 choice = s.answer.kind == AnswerSpec::Kind::kChoice;
      REQUIRE(choice == (needle.find("choice") != std::string::npos));
      REQUIRE(question.text.find(choice ? o.choice_instruction : o.short_instruction) !=
              std::string::npos);
      const std::vector<VideoFrame> frames = video_frames(s);
      REQUIRE(static_cast<int64_t>(frames.size()) == f + (image ? 1 : 0));
      const int64_t at = image ? needle_position(f, depth) : -1;
      int64_t next = 0;
      for (int64_t i = 0; i < static_cast<int64_t>(frames.size()); ++i) {
        if (i != at) REQUIRE(frames[i].rgb[0] == next++);  // haystack frames in order, none lost
      }
      const int64_t index = o.first_needle + static_cast<int64_t>(k);
      if (needle == "image_choice") {
        const Needle n = make_needle(index, 16, 12);
        REQUIRE(frames[at].rgb == n.image.rgb);
        REQUIRE(s.answer.target == n.answer);
        REQUIRE(question.text.find("A. circle") != std::string::npos);
      } else if (needle == "image_short") {
        const Needle n = make_word_needle(index, 16, 12);
        REQUIRE(frames[at].rgb == n.image.rgb);
        REQUIRE(s.answer.target == n.word);
        REQUIRE(question.text.find(n.question) == 0);
      } else {
        const TextNeedle n = make_text_needle(index);
        REQUIRE(s.answer.target == (choice ? n.answer : n.code));
        REQUIRE(question.text.find(n.question) == 0);
      }
      if (image) {  // the needle's timestamp lies between its neighbours'
        REQUIRE(frames[at].timestamp_s >= frames[std::max<int64_t>(at - 1, 0)].timestamp_s);
        REQUIRE(frames[at].timestamp_s <= frames[std::min<int64_t>(at + 1, f)].timestamp_s);
      }
    }
  }
}

TEST_CASE("MM-NIAH puts the text needle in the paragraph at the requested depth", "[mmniah]") {
  const std::vector<VideoFrame> hay = haystack(48, 16, 12);
  for (const char* needle : {"text_short", "text_choice"}) {
    for (double share : {0.1, 0.5}) {
      MmNiahOptions o = grid_options(needle);
      o.text_share = share;
      const std::vector<TaskSample> samples = build_mmniah(hay, synthetic_prose(), o);
      for (size_t k = 0; k < samples.size(); ++k) {
        const TaskSample& s = samples[k];
        INFO(s.id);
        const std::string sentence = make_text_needle(static_cast<int64_t>(k)).sentence;
        const std::vector<std::string> paragraphs = document_paragraphs(s);
        std::vector<size_t> hosts;
        for (size_t p = 0; p < paragraphs.size(); ++p) {
          if (paragraphs[p].find(sentence) != std::string::npos) hosts.push_back(p);
        }
        REQUIRE(hosts.size() == 1);
        const double depth = s.grid.at("depth");
        REQUIRE(hosts[0] == static_cast<size_t>(std::llround(depth * (paragraphs.size() - 1))));
        const std::string& host = paragraphs[hosts[0]];
        const size_t at = host.find(sentence);
        if (depth == 0.0) REQUIRE(at == 0);
        if (depth == 1.0) REQUIRE(at + sentence.size() == host.size());
        if (at > 0) REQUIRE(host[at - 1] == ' ');     // between sentences or after the paragraph
        if (depth == 0.5 && paragraphs.size() > 2) {  // mid-document: not at the document's ends
          REQUIRE(hosts[0] > 0);
          REQUIRE(hosts[0] + 1 < paragraphs.size());
        }
      }
    }
  }
}

TEST_CASE("MM-NIAH spreads paragraphs between whole groups of frames", "[mmniah]") {
  const std::vector<VideoFrame> hay = haystack(48, 16, 12);
  MmNiahOptions o = grid_options("text_short");
  o.frames = {48};
  o.frame_group = 2;
  o.text_share = 0.1;  // fewer paragraphs than groups of frames
  for (const TaskSample& s : build_mmniah(hay, synthetic_prose(), o)) {
    std::vector<size_t> runs;
    for (const PromptSegment& segment : s.prompt) {
      if (segment.kind == PromptSegment::Kind::kVideo) runs.push_back(segment.frames.size());
    }
    REQUIRE(runs.size() >= 4);
    REQUIRE(s.prompt[1].kind == PromptSegment::Kind::kVideo);  // the document starts and ends
    REQUIRE(s.prompt[s.prompt.size() - 2].kind == PromptSegment::Kind::kVideo);  // with frames
    for (size_t run : runs) REQUIRE(run % 2 == 0);
    // Evenly: the runs between paragraphs differ by a group at most; the two ends take about half.
    const auto [shortest, longest] = std::minmax_element(runs.begin() + 1, runs.end() - 1);
    REQUIRE(*longest - *shortest <= 2);
    REQUIRE(runs.front() <= *longest);
    REQUIRE(runs.back() <= *longest);
  }
}

TEST_CASE("MM-NIAH is deterministic and varies its prose by sample", "[mmniah]") {
  const std::vector<VideoFrame> hay = haystack(16, 16, 12);
  const ProseHaystack prose = synthetic_prose();
  MmNiahOptions o = grid_options("image_choice");
  o.frames = {16};
  const std::vector<TaskSample> a = build_mmniah(hay, prose, o), b = build_mmniah(hay, prose, o);
  std::set<std::string> openings;
  for (size_t k = 0; k < a.size(); ++k) {
    REQUIRE(a[k].id == b[k].id);
    REQUIRE(document_paragraphs(a[k]) == document_paragraphs(b[k]));
    REQUIRE(video_frames(a[k]).size() == video_frames(b[k]).size());
    openings.insert(document_paragraphs(a[k]).front());
  }
  REQUIRE(openings.size() == a.size());  // every sample starts somewhere else in the book
}

TEST_CASE("MM-NIAH rejects options out of range", "[mmniah]") {
  const std::vector<VideoFrame> hay = haystack(16, 16, 12);
  const ProseHaystack prose = synthetic_prose();
  MmNiahOptions o = grid_options("image_choice");
  o.frames = {16};
  o.needle = "audio_short";
  REQUIRE_THROWS_WITH(build_mmniah(hay, prose, o), Contains("unknown needle \"audio_short\""));
  o.needle = "text_short";
  o.text_share = 1.0;
  REQUIRE_THROWS_WITH(build_mmniah(hay, prose, o), Contains("text_share must be in (0, 1)"));
  o.text_share = 0.25;
  o.depths = {1.5};
  REQUIRE_THROWS_WITH(build_mmniah(hay, prose, o), Contains("depth must be in [0, 1]"));
  o.depths = {0.5};
  o.frames = {20};
  REQUIRE_THROWS_WITH(build_mmniah(hay, prose, o),
                      Contains("haystack has 16 frames, the grid needs 20"));
  o.frames = {16};
  REQUIRE_THROWS_WITH(build_mmniah(hay, ProseHaystack{"empty.txt", {}}, o),
                      Contains("empty.txt has no paragraphs"));
  // A counter that makes the needle sentence alone outweigh the share's budget.
  o.frames = {1};
  o.count_tokens = [](const std::string& text) { return text.empty() ? 0 : int64_t{200}; };
  REQUIRE_THROWS_WITH(build_mmniah(hay, prose, o),
                      Contains("mmniah-text_short-F1-d0.5: the text share"));
}

TEST_CASE("MM-NIAH from a haystack video samples it at 1 fps", "[mmniah][video]") {
  TempDir dir;
  VideoWriteOptions video;
  video.frames = 120;  // 12 s at 10 fps
  write_generated_video(dir.file("haystack.mp4"), video);
  FrameCache cache(dir.file("cache"));
  MmNiahOptions o = grid_options("text_short");
  o.frames = {4, 12};
  o.depths = {0.5};
  const std::vector<TaskSample> samples =
      build_mmniah_from_video(dir.file("haystack.mp4"), cache, synthetic_prose(), o);
  REQUIRE(samples.size() == 2);
  const std::vector<VideoFrame> frames = video_frames(samples[1]);
  REQUIRE(frames.size() == 12);
  for (int64_t k = 0; k < 12; ++k) REQUIRE(read_frame_index(frames[k]) == 10 * k);
  o.frames = {20};
  REQUIRE_THROWS_WITH(
      build_mmniah_from_video(dir.file("haystack.mp4"), cache, synthetic_prose(), o),
      Contains("haystack.mp4") && Contains("needs 20 frames at 1 fps"));
}

TEST_CASE("prose: sentence ends skip abbreviations, initials and quoted speech",
          "[mmniah][prose]") {
  const std::string text =
      "Mr. J. Smith came at 5 p.m. today. \"Is it you?\" he asked. \"It is,\" said I. "
      "Then he left! (Quietly.) The end";
  std::vector<std::string> sentences;
  size_t begin = 0;
  for (size_t end : sentence_ends(text)) {
    sentences.push_back(text.substr(begin, end - begin));
    begin = end + 1;
  }
  REQUIRE(sentences == std::vector<std::string>{"Mr. J. Smith came at 5 p.m. today.",
                                                "\"Is it you?\" he asked.", "\"It is,\" said I.",
                                                "Then he left!", "(Quietly.)"});
}

TEST_CASE("prose: a Project Gutenberg book loses its frame, headings and boilerplate",
          "[mmniah][prose]") {
  TempDir dir;
  const std::string long_line =
      "It was a dark and stormy night; the rain fell in torrents, except at occasional intervals,";
  write_file(
      dir.file("book.txt"),
      "\xEF\xBB\xBFThe Project Gutenberg EBook of A Book, by Someone\r\n\r\n"
      "This eBook is for the use of anyone anywhere at no cost.\r\n\r\n"
      "*** START OF THIS PROJECT GUTENBERG EBOOK A BOOK ***\r\n\r\n"
      "Produced by a volunteer\r\n\r\n"
      "A BOOK\r\n\r\nby\r\n\r\nSOMEONE\r\n\r\n"
      "   I. The Storm\r\n  II. The Calm\r\n\r\n"
      "CHAPTER I.\r\n\r\n" +
          long_line +
          "\r\nwhen it was checked by a violent gust of wind.\r\n\r\n"
          "\"Who is there?\"\r\n\r\n"
          "\"Nobody,\" said I.\r\n\r\n" +
          long_line +
          "   which swept up\r\nthe streets.\r\n\r\n"
          "THE END.\r\n\r\n"
          "*** END OF THIS PROJECT GUTENBERG EBOOK A BOOK ***\r\n\r\n"
          "Creating the works from public domain print editions means that no one owns it.\r\n");
  const ProseHaystack prose = load_prose(dir.file("book.txt"));
  REQUIRE(prose.path == dir.file("book.txt"));
  REQUIRE(prose.paragraphs ==
          std::vector<std::string>{long_line + " when it was checked by a violent gust of wind.",
                                   "\"Who is there?\" \"Nobody,\" said I. " + long_line +
                                       " which swept up the streets."});
}

TEST_CASE("prose: a missing or empty book is an error naming the file", "[mmniah][prose]") {
  TempDir dir;
  REQUIRE_THROWS_AS(load_prose(dir.file("missing.txt")), ProseError);
  REQUIRE_THROWS_WITH(load_prose(dir.file("missing.txt")),
                      Contains(dir.file("missing.txt")) && Contains("cannot read"));
  write_file(dir.file("titles.txt"), "A TITLE\n\nCHAPTER I.\n\nby\n");
  REQUIRE_THROWS_WITH(load_prose(dir.file("titles.txt")),
                      Contains(dir.file("titles.txt")) && Contains("no paragraphs of prose"));
}

TEST_CASE("prose: the Debian book loads as clean paragraphs and fills a grid", "[mmniah][prose]") {
  setenv("MMI_PROSE", "/elsewhere/book.txt", 1);
  REQUIRE(default_prose_path() == "/elsewhere/book.txt");
  unsetenv("MMI_PROSE");
  const std::string path = default_prose_path();
  INFO(path << " comes with Debian's golang-github-pierrec-lz4-dev (scripts/setup.sh)");
  REQUIRE(file_exists(path));
  const ProseHaystack prose = load_prose(path);
  REQUIRE(prose.paragraphs.size() > 1000);
  REQUIRE(prose.paragraphs.front().rfind("To Sherlock Holmes she is always THE woman.", 0) == 0);
  for (const std::string& p : prose.paragraphs) {
    REQUIRE(p.size() >= 100);
    REQUIRE(p.find("Gutenberg") == std::string::npos);
    REQUIRE(p.find("***") == std::string::npos);
    REQUIRE(p.find_first_of("\r\n\t") == std::string::npos);
    REQUIRE(p.find("  ") == std::string::npos);
  }
  MmNiahOptions o = grid_options("text_choice");
  o.frames = {16, 48};
  const std::vector<VideoFrame> hay = haystack(48, 16, 12);
  for (const TaskSample& s : build_mmniah(hay, prose, o)) {
    REQUIRE(std::abs(s.grid.at("text_share") - 0.25) <= 0.03);
  }
}
