#include "runtime/io/synthetic_task.h"

#include <algorithm>
#include <array>
#include <bit>
#include <sstream>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/rng.h"

namespace trident::io {

namespace {

constexpr int kMaxAttempts = 256;  // P(no eval problem in 256 draws) = (7/8)^256 ≈ 1e-15
constexpr uint64_t kSplitHashKey = 0x7a1d5eedc0ffee11ull;
constexpr std::array<ArithmeticOp, 3> kAllOps = {ArithmeticOp::Add, ArithmeticOp::Sub,
                                                 ArithmeticOp::Mul};

char op_symbol(ArithmeticOp op) {
  switch (op) {
    case ArithmeticOp::Add:
      return '+';
    case ArithmeticOp::Sub:
      return '-';
    case ArithmeticOp::Mul:
      return '*';
  }
  return '?';
}

// Decimal digits, least significant first; 0 has the single digit 0.
std::vector<int> digits_of(int64_t value) {
  std::vector<int> out;
  do {
    out.push_back(static_cast<int>(value % 10));
    value /= 10;
  } while (value > 0);
  return out;
}

int digit_at(const std::vector<int>& digits, size_t i) { return i < digits.size() ? digits[i] : 0; }

// Column-by-column working, least significant digit first; terms are separated by ';'.
// `carries` counts the columns that pass a carry (or borrow) on.
std::string addition_steps(int64_t lhs, int64_t rhs, int& carries) {
  const std::vector<int> a = digits_of(lhs), b = digits_of(rhs);
  std::ostringstream steps;
  int carry = 0;
  for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
    const int sum = digit_at(a, i) + digit_at(b, i) + carry;
    steps << (i ? ";" : "") << digit_at(a, i) << '+' << digit_at(b, i) << (carry ? "+1" : "") << '='
          << sum;
    carry = sum / 10;
    carries += carry != 0 ? 1 : 0;
  }
  return steps.str();
}

std::string subtraction_steps(int64_t lhs, int64_t rhs, int& carries) {  // lhs >= rhs
  const std::vector<int> a = digits_of(lhs), b = digits_of(rhs);
  std::ostringstream steps;
  int borrow = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int next_borrow = a[i] - digit_at(b, i) - borrow < 0 ? 1 : 0;
    const int top = a[i] + 10 * next_borrow;  // "12-7": the column borrowed ten
    steps << (i ? ";" : "") << top << '-' << digit_at(b, i) << (borrow ? "-1" : "") << '='
          << top - digit_at(b, i) - borrow;
    borrow = next_borrow;
    carries += borrow;
  }
  return steps.str();
}

std::string multiplication_steps(int64_t lhs, int64_t digit, int& carries) {
  const std::vector<int> a = digits_of(lhs);
  std::ostringstream steps;
  int64_t carry = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const int64_t product = a[i] * digit + carry;
    steps << (i ? ";" : "") << a[i] << '*' << digit;
    if (carry) steps << '+' << carry;
    steps << '=' << product;
    carry = product / 10;
    carries += carry != 0 ? 1 : 0;
  }
  return steps.str();
}

std::string_view trim(std::string_view text) {
  const auto is_space = [](char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
  };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// "-0042" -> "-42", "+0" -> "0"; nullopt if not an integer.
std::optional<std::string> canonical_integer(std::string_view text) {
  text = trim(text);
  bool negative = false;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    negative = text.front() == '-';
    text.remove_prefix(1);
  }
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return std::nullopt;
  }
  while (text.size() > 1 && text.front() == '0') text.remove_prefix(1);
  if (text == "0") negative = false;
  std::string out = negative ? "-" : "";
  out.append(text);
  return out;
}

bool has_tag(std::string_view text) {
  for (std::string_view tag : {"<think>", "</think>", "<answer>", "</answer>"}) {
    if (text.find(tag) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

const char* split_name(Split split) { return split == Split::Train ? "train" : "eval"; }

Split problem_split(int64_t lhs, ArithmeticOp op, int64_t rhs) {
  const PhiloxBlock hash = philox4x32({static_cast<uint32_t>(lhs), static_cast<uint32_t>(rhs),
                                       static_cast<uint32_t>(op), static_cast<uint32_t>(lhs >> 32)},
                                      kSplitHashKey);
  return hash[0] % 8 == 0 ? Split::Eval : Split::Train;
}

uint8_t parse_ops(std::string_view list) {
  uint8_t ops = 0;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = trim(list.substr(0, comma));
    if (name == "add") {
      ops |= static_cast<uint8_t>(ArithmeticOp::Add);
    } else if (name == "sub") {
      ops |= static_cast<uint8_t>(ArithmeticOp::Sub);
    } else if (name == "mul") {
      ops |= static_cast<uint8_t>(ArithmeticOp::Mul);
    } else {
      TRIDENT_USER_FAIL("arithmetic ops: unknown operation '", name,
                        "'; valid: add, sub, mul (comma-separated)");
    }
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
  }
  TRIDENT_USER_CHECK(ops != 0, "arithmetic ops: give at least one of add, sub, mul");
  return ops;
}

ArithmeticProblem build_problem(int64_t lhs, ArithmeticOp op, int64_t rhs) {
  TRIDENT_CHECK(lhs >= 0 && rhs >= 0, "operands must be non-negative: ", lhs, ", ", rhs);
  TRIDENT_CHECK(op != ArithmeticOp::Sub || lhs >= rhs, "subtraction needs lhs >= rhs");
  TRIDENT_CHECK(op != ArithmeticOp::Mul || rhs <= 9, "multiplication needs a one-digit rhs");
  ArithmeticProblem problem;
  problem.lhs = lhs;
  problem.rhs = rhs;
  problem.op = op;
  int64_t result = 0;
  std::string steps;
  switch (op) {
    case ArithmeticOp::Add:
      result = lhs + rhs;
      steps = addition_steps(lhs, rhs, problem.carries);
      break;
    case ArithmeticOp::Sub:
      result = lhs - rhs;
      steps = subtraction_steps(lhs, rhs, problem.carries);
      break;
    case ArithmeticOp::Mul:
      result = lhs * rhs;
      steps = multiplication_steps(lhs, rhs, problem.carries);
      break;
  }
  std::ostringstream prompt, completion;
  prompt << lhs << op_symbol(op) << rhs << '=';
  problem.prompt = prompt.str();
  problem.answer = std::to_string(result);
  completion << "<think>" << steps << "</think><answer>" << problem.answer << "</answer>";
  problem.completion = completion.str();
  return problem;
}

ArithmeticProblem make_problem(uint64_t seed, Split split, uint64_t index,
                               const ArithmeticOptions& options) {
  TRIDENT_USER_CHECK(options.digits >= 1 && options.digits <= 9,
                     "arithmetic task: digits = ", options.digits, " must be in 1..9");
  TRIDENT_USER_CHECK(options.ops != 0 && (options.ops & ~uint8_t{7}) == 0,
                     "arithmetic task: the op set must be a non-empty subset of add, sub, mul");
  std::vector<ArithmeticOp> ops;
  for (ArithmeticOp op : kAllOps) {
    if (options.ops & static_cast<uint8_t>(op)) ops.push_back(op);
  }
  uint32_t range = 1;
  for (int d = 0; d < options.digits; ++d) range *= 10;

  const CounterRng rng(seed, stream_id(std::string("synthetic/arithmetic/") + split_name(split)));
  for (uint64_t attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const uint64_t base = (index * kMaxAttempts + attempt) * 3;
    ArithmeticProblem problem;  // only the operands; build_problem writes the text
    problem.op = ops[rng.bits(base) % ops.size()];
    problem.lhs = rng.bits(base + 1) % range;
    problem.rhs =
        problem.op == ArithmeticOp::Mul ? 2 + rng.bits(base + 2) % 8 : rng.bits(base + 2) % range;
    if (problem.op == ArithmeticOp::Sub && problem.lhs < problem.rhs) {
      std::swap(problem.lhs, problem.rhs);  // keep results non-negative
    }
    if (problem_split(problem.lhs, problem.op, problem.rhs) != split) continue;

    return build_problem(problem.lhs, problem.op, problem.rhs);
  }
  TRIDENT_FAIL("no ", split_name(split), " problem found for index ", index, " in ", kMaxAttempts,
               " draws");
}

std::optional<std::string> extract_answer(std::string_view completion) {
  constexpr std::string_view kOpen = "<answer>", kClose = "</answer>";
  const size_t open = completion.find(kOpen);
  if (open == std::string_view::npos) return std::nullopt;
  const size_t start = open + kOpen.size();
  const size_t close = completion.find(kClose, start);
  if (close == std::string_view::npos) return std::nullopt;
  return std::string(completion.substr(start, close - start));
}

bool answers_match(std::string_view given, std::string_view expected) {
  const std::optional<std::string> a = canonical_integer(given);
  const std::optional<std::string> b = canonical_integer(expected);
  if (a && b) return *a == *b;
  return trim(given) == trim(expected);
}

bool is_correct(std::string_view completion, std::string_view expected) {
  const std::optional<std::string> answer = extract_answer(completion);
  return answer.has_value() && answers_match(*answer, expected);
}

bool format_ok(std::string_view completion) {
  if (!completion.empty() && completion.back() == '\x03') completion.remove_suffix(1);
  std::string_view rest = trim(completion);
  const auto take = [&rest](std::string_view tag) {
    if (rest.substr(0, tag.size()) != tag) return false;
    rest.remove_prefix(tag.size());
    return true;
  };
  // Returns the text before `close` and consumes it with the tag; nullopt if missing or tagged.
  const auto body_until = [&rest](std::string_view close) -> std::optional<std::string_view> {
    const size_t end = rest.find(close);
    if (end == std::string_view::npos) return std::nullopt;
    const std::string_view body = rest.substr(0, end);
    if (has_tag(body)) return std::nullopt;
    rest.remove_prefix(end + close.size());
    return body;
  };
  if (!take("<think>") || !body_until("</think>")) return false;
  rest = trim(rest);
  if (!take("<answer>")) return false;
  const std::optional<std::string_view> answer = body_until("</answer>");
  return answer.has_value() && !trim(*answer).empty() && trim(rest).empty();
}

}  // namespace trident::io
