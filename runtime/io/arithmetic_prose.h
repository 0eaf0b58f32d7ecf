#pragma once
// The arithmetic task as a plain-text corpus, for an R1-Zero style run: a base model pretrained
// on worked solutions written as prose, of which only a small share uses the tagged
// <think>…</think><answer>…</answer> form the rule rewards ask for.
//
//   prompt      "58+67="                       (the prompt GRPO samples from, unchanged)
//   prose       "8 plus 7 is 15, write 5 and carry 1. 5 plus 6 plus 1 is 12. So the answer is 125."
//   tagged      "<think>8+7=15;5+6+1=12</think><answer>125</answer>"   (io::make_problem's)
//
// The wording varies from document to document the way a web corpus would (an opening phrase,
// the words for the operation, how a written digit and a carry are said, the closing
// sentence), but stays the same within one document. The openings matter beyond looks: they
// put the working at varying distances from the prompt, so the model must learn to find the
// prompt's digits by what they are, not by a fixed offset; the tagged form is then one more
// opening ("<think>") and can reuse that skill. With the working always right after the
// prompt, the `small` model solved prose problems but misread the digits in the tagged form,
// which it had seen too rarely to learn on its own. None of the prose wordings contains a tag,
// so the rewards' format check (io::format_ok) passes only on the tagged documents.
//
// Determinism and splits: document `index` of `split` is problem `index` of io::make_problem
// (same seed, split and options, so train and eval stay disjoint and GRPO's prompts are the
// problems the base model read), and whether it is tagged and which wording it uses are drawn
// from a CounterRng stream of their own keyed by (seed, split, index).
#include <cstdint>
#include <string>

#include "runtime/io/synthetic_task.h"

namespace trident::io {

struct ProseOptions {
  double tagged_share = 0.04;  // share of documents in the tagged form, in [0, 1]
};

// How one prose document is worded; each index picks one of the wordings in the .cpp file.
struct ProseStyle {
  int opening = 0;  // phrase before the working, of 0 to 21 characters ("" for 0)
  int words = 0;    // "8 plus 7 is 15" / "8 + 7 = 15" / "8 and 7 make 15" / "8+7=15;…"
  int clause = 0;   // ", write 5 and carry 1." / ", so put down 5 …" / "; 5 down, 1 carried."
  int closing = 0;  // "So the answer is 125." / "That gives 125." / "So 58+67=125." …
};
inline constexpr int kProseOpenings = 8, kProseWords = 4, kProseClauses = 3, kProseClosings = 5;

struct ProseDocument {
  ArithmeticProblem problem;  // prompt, tagged completion, answer
  std::string completion;     // the text after the prompt: prose, or problem.completion
  bool tagged = false;        // completion == problem.completion
  ProseStyle style;           // the wording of a prose completion
};

// The worked solution of `problem` in prose with one wording; every column's working, then a
// closing sentence that states problem.answer.
std::string prose_solution(const ArithmeticProblem& problem, const ProseStyle& style);

// Document `index` of `split`: problem `index` of make_problem(seed, split, index, task), its
// completion tagged with probability options.tagged_share, prose otherwise. UserError if the
// share is outside [0, 1] (the message names data.prose_tagged_share) or the task options are
// out of range.
ProseDocument make_prose_document(uint64_t seed, Split split, uint64_t index,
                                  const ArithmeticOptions& task, const ProseOptions& options);

// Validates the share alone (used where the sampler is made, before any document).
void check_prose_options(const ProseOptions& options);

}  // namespace trident::io
