// Scoring replies: multiple-choice letter extraction, and open-ended exact match and token F1 (SQuAD-
// style normalisation). Torch- and FFmpeg-free.
#pragma once

#include <string>
#include <vector>

namespace mmi {

// The option letter a reply chooses among the first `num_options` letters (A, B, ...), or '\0' when it
// names none. Strips common lead-ins ("The answer is", "Answer:", "Option", "(") and accepts a letter
// standing alone ("B", "(B)", "B.", "B) a cat", "answer is b"), never the article in "A man ...".
char extract_choice(const std::string& reply, int num_options = 5);

// Lower case, punctuation and the articles a/an/the removed, whitespace collapsed.
std::string normalize_answer(const std::string& text);
std::vector<std::string> answer_tokens(const std::string& text);  // of the normalised text

bool exact_match(const std::string& prediction, const std::string& target);
// Harmonic mean of token precision and recall over the normalised tokens (multiset overlap).
double token_f1(const std::string& prediction, const std::string& target);

}  // namespace mmi
