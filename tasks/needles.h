// Needle images for the NIAH tasks, drawn with OpenCV: a coloured shape and a word on a plain
// background, with a multiple-choice question about it. Deterministic for a given index.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tasks/video.h"

namespace mmi {

struct Needle {
  VideoFrame image;                  // width x height RGB
  std::string shape, color, word;    // what is drawn
  std::string question;              // asks for the shape
  std::vector<std::string> options;  // "A. circle", ...
  std::string answer;                // the letter of the right option
};

// The needle number `index` (shapes, colours and words cycle through fixed lists).
Needle make_needle(int64_t index, int width, int height);

// The short-answer form of needle `index`: the same image as make_needle(index), a question asking
// for the word drawn in it, no options, and the word as drawn (e.g. "APPLE") as the answer.
Needle make_word_needle(int64_t index, int width, int height);

// A text needle for the mixed-modality haystack: one sentence hidden in the prose and a question
// that only it answers. Deterministic for a given index.
struct TextNeedle {
  std::string sentence;              // "The secret code of the blue lighthouse is 4817."
  std::string question;              // "What is the secret code of the blue lighthouse?"
  std::string code;                  // the short answer: four digits
  std::vector<std::string> options;  // multiple-choice form: "A. 4817", ... (the code and 3 others)
  std::string answer;                // the letter of the code among the options
};

TextNeedle make_text_needle(int64_t index);

}  // namespace mmi
