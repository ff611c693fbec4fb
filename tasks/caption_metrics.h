// Reference-based captioning metrics computed locally, following the COCO caption evaluation:
// corpus BLEU-4, ROUGE-L (beta 1.2) and CIDEr-D (sigma 6, x10). Inputs are one candidate and one or
// more references per sample; text is lower-cased and split on anything that is not a letter or digit.
#pragma once

#include <string>
#include <vector>

namespace mmi {

std::vector<std::string> caption_tokens(const std::string& text);

// candidates[i] is scored against references[i] (at least one each); sizes must match.
double bleu4(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references);
double rouge_l(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references);
double cider_d(const std::vector<std::string>& candidates, const std::vector<std::vector<std::string>>& references);

}  // namespace mmi
