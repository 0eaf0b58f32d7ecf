#pragma once
// A verifiable synthetic task for SFT and GRPO: multi-digit arithmetic.
//
//   prompt      "58+67="
//   completion  "<think>8+7=15;5+6+1=12</think><answer>125</answer>"
//
// The reasoning walks the columns from the least significant digit, writing each column's
// sum with the carry it received ("+1"); subtraction borrows ("12-7=5" takes 10 from the next
// column, which then shows "-1"); multiplication (a multi-digit number times one digit) writes
// each digit's product plus the carry. The answer is the exact integer result.
//
// Determinism: problem `index` of `split` is a pure function of (seed, split, index, options),
// drawn with trident::CounterRng, so any rank can build any problem without coordination.
// Train and eval are disjoint by construction: a problem (a, op, b) belongs to the eval split
// iff a seed-independent hash of (a, op, b) falls in 1/8 of its range; each split draws
// candidates until one of its own comes up. So no eval problem ever appears in training, for
// any pair of seeds.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace trident::io {

enum class Split : uint8_t { Train = 0, Eval = 1 };
const char* split_name(Split split);

enum class ArithmeticOp : uint8_t { Add = 1, Sub = 2, Mul = 4 };

struct ArithmeticOptions {
  int digits = 3;   // operands have at most this many digits (1..9)
  uint8_t ops = 1;  // bit set of ArithmeticOp; addition only by default
};

struct ArithmeticProblem {
  std::string prompt;      // "58+67="
  std::string completion;  // "<think>…</think><answer>125</answer>"
  std::string answer;      // "125"
  int64_t lhs = 0;
  int64_t rhs = 0;
  ArithmeticOp op = ArithmeticOp::Add;
  // Columns of the working that pass a carry (or a borrow) on: the problem's difficulty in the
  // metrics by difficulty ("58+67": 2; "12+34": 0).
  int carries = 0;
};

// Throws UserError if options are out of range (digits outside 1..9, empty op set).
ArithmeticProblem make_problem(uint64_t seed, Split split, uint64_t index,
                               const ArithmeticOptions& options);
inline ArithmeticProblem make_problem(uint64_t seed, Split split, uint64_t index, int digits) {
  return make_problem(seed, split, index, ArithmeticOptions{digits, 1});
}

// The prompt, worked completion and answer for one problem (subtraction needs lhs >= rhs,
// multiplication a single-digit rhs). make_problem draws (lhs, op, rhs) and calls this.
ArithmeticProblem build_problem(int64_t lhs, ArithmeticOp op, int64_t rhs);

// Which split a problem belongs to (the seed-independent hash described above).
Split problem_split(int64_t lhs, ArithmeticOp op, int64_t rhs);

// Parses "add,sub,mul" (any subset, any order) into an op bit set; UserError otherwise.
uint8_t parse_ops(std::string_view list);

// --- rule rewards -------------------------------------------------------------------------

// The text between the first "<answer>" and the "</answer>" after it; nullopt if absent.
std::optional<std::string> extract_answer(std::string_view completion);

// Compares answers as integers when both are integers ("0357" == " 357 ", "-0" == "0"),
// otherwise as strings with surrounding whitespace removed.
bool answers_match(std::string_view given, std::string_view expected);

// The completion's <answer> matches `expected` (false if there is no answer).
bool is_correct(std::string_view completion, std::string_view expected);

// Exactly one <think>…</think> followed by exactly one <answer>…</answer> with a non-empty
// answer; only whitespace may surround or separate them, and neither part may contain a tag.
// A trailing EOS byte (0x03) is allowed.
bool format_ok(std::string_view completion);

}  // namespace trident::io
