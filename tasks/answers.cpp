#include "tasks/answers.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

namespace mmi {
namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }

// The letter at `pos` if it is an option letter standing alone: not inside a word, and not the article
// "A"/"a" followed by a word.
char standalone_letter(const std::string& s, size_t pos, int num_options) {
  const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(s[pos])));
  if (c < 'A' || c >= 'A' + num_options) return '\0';
  if (pos > 0 && is_alpha(s[pos - 1])) return '\0';
  if (pos + 1 < s.size() && is_alpha(s[pos + 1])) return '\0';
  if (c == 'A') {  // "A man ..." is an article; "A." "A)" "A" at the end are choices
    size_t next = pos + 1;
    while (next < s.size() && s[next] == ' ') ++next;
    if (next > pos + 1 && next < s.size() && is_alpha(s[next])) return '\0';
  }
  return c;
}

}  // namespace

char extract_choice(const std::string& reply, int num_options) {
  std::string s = reply;
  // Lead-ins models put before the letter.
  static const char* const kLeadIns[] = {"the correct answer is", "the best answer is", "the answer is",
                                         "best option:", "correct option:", "answer:", "option", "answer",
                                         "i choose", "i think it's", "i think it is", "it's", "it is"};
  bool stripped = true;
  while (stripped) {
    stripped = false;
    size_t start = s.find_first_not_of(" \t\r\n*\"'([");
    s = start == std::string::npos ? "" : s.substr(start);
    const std::string l = lower(s);
    for (const char* lead : kLeadIns) {
      const std::string p(lead);
      if (l.rfind(p, 0) == 0 && (l.size() == p.size() || !is_alpha(l[p.size()]))) {
        s = s.substr(p.size());
        stripped = true;
        break;
      }
    }
  }
  if (!s.empty()) {
    if (char c = standalone_letter(s, 0, num_options)) return c;
  }
  // Otherwise a parenthesised letter anywhere: "... so (C) fits".
  for (size_t p = 0; p + 2 < reply.size(); ++p) {
    if (reply[p] == '(' && reply[p + 2] == ')') {
      if (char c = standalone_letter(reply, p + 1, num_options)) return c;
    }
  }
  // Or "answer is X" / "option X" inside the text.
  const std::string l = lower(reply);
  for (const std::string marker : {"answer is ", "option ", "answer: "}) {
    for (size_t p = l.find(marker); p != std::string::npos; p = l.find(marker, p + 1)) {
      size_t q = p + marker.size();
      while (q < reply.size() && (reply[q] == '(' || reply[q] == ' ')) ++q;
      if (q < reply.size()) {
        if (char c = standalone_letter(reply, q, num_options)) return c;
      }
    }
  }
  return '\0';
}

std::string normalize_answer(const std::string& text) {
  std::string cleaned;
  for (char c : lower(text)) cleaned += std::ispunct(static_cast<unsigned char>(c)) ? ' ' : c;
  std::istringstream words(cleaned);
  std::string word, out;
  while (words >> word) {
    if (word == "a" || word == "an" || word == "the") continue;
    out += (out.empty() ? "" : " ") + word;
  }
  return out;
}

std::vector<std::string> answer_tokens(const std::string& text) {
  std::istringstream words(normalize_answer(text));
  std::vector<std::string> out;
  for (std::string w; words >> w;) out.push_back(w);
  return out;
}

bool exact_match(const std::string& prediction, const std::string& target) {
  return normalize_answer(prediction) == normalize_answer(target);
}

double token_f1(const std::string& prediction, const std::string& target) {
  const std::vector<std::string> p = answer_tokens(prediction), t = answer_tokens(target);
  if (p.empty() || t.empty()) return p.empty() && t.empty() ? 1.0 : 0.0;
  std::map<std::string, int> counts;
  for (const auto& w : t) ++counts[w];
  int common = 0;
  for (const auto& w : p) {
    if (counts[w]-- > 0) ++common;
  }
  if (common == 0) return 0.0;
  const double precision = double(common) / p.size(), recall = double(common) / t.size();
  return 2 * precision * recall / (precision + recall);
}

}  // namespace mmi
