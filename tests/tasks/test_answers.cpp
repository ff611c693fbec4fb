// Answer extraction, open-ended scoring, captioning metrics against hand-computed values, manifests.
#include <cmath>
#include <fstream>

#include "tasks/answers.h"
#include "tasks/caption_metrics.h"
#include "tasks/manifest.h"
#include "tests/catch.h"
#include "tests/temp_dir.h"

using namespace mmi;
using mmi::testing::scratch_file;

TEST_CASE("multiple-choice letters are found in tricky replies", "[answers]") {
  const std::vector<std::pair<std::string, char>> cases = {
      {"B", 'B'},
      {"(C)", 'C'},
      {"The answer is (B).", 'B'},
      {"Answer: D. The man runs away.", 'D'},
      {"a) dogs", 'A'},
      {"A.", 'A'},
      {"A", 'A'},
      {"**B**", 'B'},
      {"I think it's E", 'E'},
      {"The correct answer is c", 'C'},
      {"Option B is right", 'B'},
      {"Based on the video, the answer is C.", 'C'},
      {"Looking closely, (D) matches the red square", 'D'},
      {"A man walks into the room", '\0'},
      {"F", '\0'},
      {"none of these", '\0'},
      {"", '\0'},
  };
  for (const auto& [reply, letter] : cases) {
    INFO("reply: \"" << reply << "\"");
    REQUIRE(extract_choice(reply) == letter);
  }
  REQUIRE(extract_choice("D", 3) == '\0');  // only A-C offered
}

TEST_CASE("open-ended answers: normalisation, exact match, token F1", "[answers]") {
  REQUIRE(normalize_answer("  The Dog, barking! ") == "dog barking");
  REQUIRE(exact_match("The Dog!", "dog"));
  REQUIRE_FALSE(exact_match("two dogs", "dog"));
  REQUIRE(token_f1("the cat sat", "a cat sat down") == Approx(0.8));  // P = 1, R = 2/3
  REQUIRE(token_f1("red red blue", "red blue green") == Approx(2.0 / 3.0));
  REQUIRE(token_f1("", "") == 1.0);
  REQUIRE(token_f1("cat", "") == 0.0);
}

TEST_CASE("captioning metrics match hand-computed values", "[metrics]") {
  // BLEU-4: clipped precisions 6/7, 5/6, 4/5, 3/4, no brevity penalty.
  REQUIRE(bleu4({"the cat sat on the mat today"}, {{"the cat sat on the mat"}}) ==
          Approx(std::pow(3.0 / 7.0, 0.25)).epsilon(1e-6));
  // Every order matches fully, but the candidate is short: exp(1 - 6/5).
  REQUIRE(bleu4({"the cat sat on the"}, {{"the cat sat on the mat"}}) == Approx(std::exp(-0.2)).epsilon(1e-6));
  // The closest reference length counts.
  REQUIRE(bleu4({"the cat sat on the"}, {{"a cat", "the cat sat on the mat and more"}}) ==
          Approx(1.0).epsilon(1e-6));
  // ROUGE-L: LCS "the cat on the mat" = 5 of 6 both ways, so F = 5/6.
  REQUIRE(rouge_l({"the cat sat on the mat"}, {{"the cat is on the mat"}}) == Approx(5.0 / 6.0));
  REQUIRE(rouge_l({"completely different words"}, {{"the cat is on the mat"}}) == 0.0);
  // CIDEr-D: a candidate equal to its only reference, in a corpus of distinct captions, scores 10.
  const std::vector<std::vector<std::string>> refs = {{"a red square moves left"}, {"two people talk in a kitchen"}};
  REQUIRE(cider_d({"a red square moves left", "two people talk in a kitchen"}, refs) == Approx(10.0));
  REQUIRE(cider_d({"a red square moves left", "nothing alike here at all"}, refs) == Approx(5.0));
  REQUIRE(cider_d({"a red square", "two people talk in a kitchen"}, refs) < 10.0);
  REQUIRE_THROWS_WITH(bleu4({"x"}, {}), Contains("one list of references per candidate"));
  REQUIRE_THROWS_WITH(cider_d({"x"}, {{}}), Contains("needs a reference"));
}

TEST_CASE("manifests load, resolve paths and name the line of a bad entry", "[manifest]") {
  const std::string manifest = scratch_file("mmi_test_qa.jsonl");
  {
    std::ofstream qa(manifest);
    qa << "# Video-MME style\n"
       << R"({"id": "q1", "video": "videos/a.mp4", "question": "What color?", "options": ["A. red", "B. blue"], "answer": "B", "duration": "short"})"
       << "\n\n"
       << R"({"id": 7, "video": "/data/b.mp4", "question": "What happens?", "answer": "a man runs"})" << "\n";
  }
  const std::vector<VideoQaItem> items = load_video_qa_manifest(manifest);
  REQUIRE(items.size() == 2);
  REQUIRE(items[0].multiple_choice());
  REQUIRE(items[0].video == scratch_file("videos/a.mp4"));  // relative to the manifest's folder
  REQUIRE(items[0].line == 2);
  REQUIRE(items[1].id == "7");
  REQUIRE_FALSE(items[1].multiple_choice());
  REQUIRE(items[1].video == "/data/b.mp4");

  auto fails_with = [](const std::string& line, const std::string& message) {
    const std::string bad = scratch_file("mmi_test_bad.jsonl");
    std::ofstream(bad) << R"({"id": "ok", "video": "v.mp4", "question": "q", "answer": "x"})" << "\n" << line << "\n";
    REQUIRE_THROWS_WITH(load_video_qa_manifest(bad), Contains("mmi_test_bad.jsonl:2") && Contains(message));
  };
  fails_with(R"({"id": "q2", "video": "v.mp4", "answer": "A"})", "missing \"question\"");
  fails_with(R"({"id": "q2", "video": "v.mp4", "question": "q", "options": ["x", "y"], "answer": "C"})", "option letters A..B");
  fails_with(R"({"id": "q2", "video": "v.mp4", "question": "q", "answer": "A")", "malformed JSON");
  fails_with(R"({"id": "ok", "video": "v.mp4", "question": "q", "answer": "x"})", "duplicate id");
  fails_with(R"(["not", "an", "object"])", "expected a JSON object");
  fails_with(R"({"id": "q3", "video": 5, "question": "q", "answer": "x"})", "\"video\" must be a string");
  REQUIRE_THROWS_WITH(load_video_qa_manifest("mmi_no_such_manifest.jsonl"), Contains("cannot open"));

  const std::string captions = scratch_file("mmi_test_captions.jsonl");
  std::ofstream(captions) << R"({"id": "c1", "video": "v.mp4", "captions": ["one", "two"]})" << "\n"
                          << R"({"id": "c2", "video": "w.mp4", "captions": []})" << "\n";
  REQUIRE_THROWS_WITH(load_caption_manifest(captions),
                      Contains("mmi_test_captions.jsonl:2") && Contains("at least one reference"));
}
