#include "tasks/caption_metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>

namespace mmi {
namespace {

using Tokens = std::vector<std::string>;
using NgramCounts = std::map<Tokens, double>;

NgramCounts ngrams(const Tokens& t, int max_n) {
  NgramCounts out;
  for (int n = 1; n <= max_n; ++n) {
    for (size_t i = 0; i + n <= t.size(); ++i) out[Tokens(t.begin() + i, t.begin() + i + n)] += 1;
  }
  return out;
}

void check_sizes(const std::vector<std::string>& c, const std::vector<std::vector<std::string>>& r, const char* who) {
  if (c.size() != r.size()) throw std::invalid_argument(std::string(who) + ": one list of references per candidate");
  for (const auto& refs : r) {
    if (refs.empty()) throw std::invalid_argument(std::string(who) + ": every candidate needs a reference");
  }
}

size_t lcs_length(const Tokens& a, const Tokens& b) {
  std::vector<size_t> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// CIDEr-D's TF-IDF vector of one sentence: per n (1..4) the weighted n-grams and the vector norm.
struct CiderVector {
  std::map<Tokens, double> weights[4];
  double norm[4] = {0, 0, 0, 0};
  double length = 0;  // bigram count, as the reference implementation measures length
};

CiderVector cider_vector(const NgramCounts& counts, const std::map<Tokens, double>& df, double log_docs) {
  CiderVector v;
  for (const auto& [gram, tf] : counts) {
    const int n = static_cast<int>(gram.size()) - 1;
    auto it = df.find(gram);
    const double idf = log_docs - std::log(std::max(1.0, it == df.end() ? 0.0 : it->second));
    v.weights[n][gram] = tf * idf;
    v.norm[n] += (tf * idf) * (tf * idf);
    if (n == 1) v.length += tf;
  }
  for (double& x : v.norm) x = std::sqrt(x);
  return v;
}

double cider_similarity(const CiderVector& hyp, const CiderVector& ref) {
  constexpr double kSigma = 6.0;
  const double delta = hyp.length - ref.length;
  double total = 0;
  for (int n = 0; n < 4; ++n) {
    double dot = 0;
    for (const auto& [gram, w] : hyp.weights[n]) {
      auto it = ref.weights[n].find(gram);
      if (it != ref.weights[n].end()) dot += std::min(w, it->second) * it->second;  // clipped, as CIDEr-D
    }
    if (hyp.norm[n] != 0 && ref.norm[n] != 0) dot /= hyp.norm[n] * ref.norm[n];
    total += dot * std::exp(-(delta * delta) / (2 * kSigma * kSigma));
  }
  return total / 4;
}

}  // namespace

std::vector<std::string> caption_tokens(const std::string& text) {
  std::vector<std::string> out;
  std::string word;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else if (!word.empty()) {
      out.push_back(word);
      word.clear();
    }
  }
  if (!word.empty()) out.push_back(word);
  return out;
}

double bleu4(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references) {
  check_sizes(candidates, references, "bleu4");
  double correct[4] = {0, 0, 0, 0}, guessed[4] = {0, 0, 0, 0}, cand_len = 0, ref_len = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Tokens cand = caption_tokens(candidates[i]);
    std::map<Tokens, double> max_ref;  // clip counts: the most any one reference has
    size_t closest = SIZE_MAX;
    for (const auto& r : references[i]) {
      const Tokens ref = caption_tokens(r);
      for (const auto& [g, c] : ngrams(ref, 4)) max_ref[g] = std::max(max_ref[g], c);
      const auto gap = [&](size_t len) { return std::abs(static_cast<long>(len) - static_cast<long>(cand.size())); };
      if (closest == SIZE_MAX || gap(ref.size()) < gap(closest) || (gap(ref.size()) == gap(closest) && ref.size() < closest)) {
        closest = ref.size();
      }
    }
    for (const auto& [g, c] : ngrams(cand, 4)) {
      guessed[g.size() - 1] += c;
      auto it = max_ref.find(g);
      correct[g.size() - 1] += std::min(c, it == max_ref.end() ? 0.0 : it->second);
    }
    cand_len += cand.size();
    ref_len += closest;
  }
  // The COCO scorer's tiny/small terms keep the geometric mean finite when an order has no match.
  constexpr double kTiny = 1e-15, kSmall = 1e-9;
  double log_sum = 0;
  for (int n = 0; n < 4; ++n) log_sum += std::log((correct[n] + kTiny) / (guessed[n] + kSmall));
  const double brevity = cand_len < ref_len ? std::exp(1 - ref_len / (cand_len + kTiny)) : 1.0;
  return brevity * std::exp(log_sum / 4);
}

double rouge_l(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references) {
  check_sizes(candidates, references, "rouge_l");
  constexpr double kBeta = 1.2;
  double total = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Tokens cand = caption_tokens(candidates[i]);
    double precision = 0, recall = 0;
    for (const auto& r : references[i]) {
      const Tokens ref = caption_tokens(r);
      const double lcs = static_cast<double>(lcs_length(cand, ref));
      if (!cand.empty()) precision = std::max(precision, lcs / cand.size());
      if (!ref.empty()) recall = std::max(recall, lcs / ref.size());
    }
    if (precision > 0 && recall > 0) {
      total += (1 + kBeta * kBeta) * precision * recall / (recall + kBeta * kBeta * precision);
    }
  }
  return candidates.empty() ? 0.0 : total / candidates.size();
}

double cider_d(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references) {
  check_sizes(candidates, references, "cider_d");
  if (candidates.empty()) return 0.0;
  // Document frequency: in how many samples' references an n-gram appears.
  std::vector<std::vector<NgramCounts>> ref_counts(references.size());
  std::map<Tokens, double> df;
  for (size_t i = 0; i < references.size(); ++i) {
    std::set<Tokens> seen;
    for (const auto& r : references[i]) {
      ref_counts[i].push_back(ngrams(caption_tokens(r), 4));
      for (const auto& [g, c] : ref_counts[i].back()) seen.insert(g);
    }
    for (const auto& g : seen) df[g] += 1;
  }
  const double log_docs = std::log(static_cast<double>(references.size()));
  double total = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const CiderVector hyp = cider_vector(ngrams(caption_tokens(candidates[i]), 4), df, log_docs);
    double score = 0;
    for (const auto& counts : ref_counts[i]) score += cider_similarity(hyp, cider_vector(counts, df, log_docs));
    total += 10.0 * score / ref_counts[i].size();
  }
  return total / candidates.size();
}

}  // namespace mmi
