// One task sample through one model with one attention method: the pre-fill, the answer and its score.
// Multiple-choice and short answers are scored teacher-forced in a single pre-fill (the argmax at every
// answer row must be the answer's token), so the same pass gives the accuracy and the pre-fill latency;
// open-ended answers and captions are decoded greedily and scored by token F1 / ROUGE-L.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "models/qwen2_5_vl/model.h"
#include "tasks/sample.h"

namespace mmi {

class AttentionMethod;

// The model inputs of a sample: with the answer appended when it is scored teacher-forced.
ModelInputs prepare_sample(const Qwen25VLModel& model, const TaskSample& sample, const PixelBudget& budget);
bool teacher_forced(const AnswerSpec& answer);

struct Evaluation {
  std::string prediction;
  double score = 0;  // in [0, 1]
  PrefillResult prefill;
};

// inputs from prepare_sample; embeds: [L, hidden] from model.embed(inputs), shared by every method.
Evaluation evaluate_sample(const Qwen25VLModel& model, const TaskSample& sample, const ModelInputs& inputs,
                           const at::Tensor& embeds, const AttentionMethod& method, int64_t max_new_tokens = 32);

}  // namespace mmi
