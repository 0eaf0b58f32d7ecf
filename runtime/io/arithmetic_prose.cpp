#include "runtime/io/arithmetic_prose.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <vector>

#include "runtime/core/error.h"
#include "runtime/core/rng.h"

namespace trident::io {

namespace {

// One column of the working, least significant first: "left op right [op2 carried] = value".
struct Column {
  int64_t left = 0;     // the top digit (plus the ten a subtraction borrowed)
  int64_t right = 0;    // the bottom digit, or the one-digit multiplier
  int64_t carried = 0;  // carry (or borrow) received from the column before
  int64_t value = 0;    // the column's result
  int64_t passed = 0;   // carry (or borrow) passed to the next column
};

std::vector<int64_t> digits_of(int64_t value) {  // least significant first; 0 is {0}
  std::vector<int64_t> out;
  do {
    out.push_back(value % 10);
    value /= 10;
  } while (value > 0);
  return out;
}

int64_t digit_at(const std::vector<int64_t>& digits, size_t i) {
  return i < digits.size() ? digits[i] : 0;
}

// The same columns as the tagged working of synthetic_task.cpp, so prose and tagged documents
// teach one procedure.
std::vector<Column> columns_of(const ArithmeticProblem& p) {
  const std::vector<int64_t> a = digits_of(p.lhs), b = digits_of(p.rhs);
  std::vector<Column> out;
  int64_t carry = 0;
  switch (p.op) {
    case ArithmeticOp::Add:
      for (size_t i = 0; i < std::max(a.size(), b.size()); ++i) {
        const int64_t sum = digit_at(a, i) + digit_at(b, i) + carry;
        out.push_back({digit_at(a, i), digit_at(b, i), carry, sum, sum / 10});
        carry = sum / 10;
      }
      break;
    case ArithmeticOp::Sub:  // lhs >= rhs
      for (size_t i = 0; i < a.size(); ++i) {
        const int64_t borrow = a[i] - digit_at(b, i) - carry < 0 ? 1 : 0;
        const int64_t top = a[i] + 10 * borrow;
        out.push_back({top, digit_at(b, i), carry, top - digit_at(b, i) - carry, borrow});
        carry = borrow;
      }
      break;
    case ArithmeticOp::Mul:
      for (size_t i = 0; i < a.size(); ++i) {
        const int64_t product = a[i] * p.rhs + carry;
        out.push_back({a[i], p.rhs, carry, product, product / 10});
        carry = product / 10;
      }
      break;
  }
  return out;
}

struct Words {
  const char* op;  // between the two digits
  const char* is;  // before the result
};

// [words style][op]: addition, subtraction, multiplication. The last style is the compact
// notation ("8+7=15;5+6+1=12", no spaces, no clause), the one the tagged working uses.
constexpr std::array<std::array<Words, 3>, kProseWords> kWords = {{
    {{{"plus", "is"}, {"minus", "is"}, {"times", "is"}}},
    {{{"+", "="}, {"-", "="}, {"*", "="}}},
    {{{"and", "make"}, {"take away", "leaves"}, {"times", "makes"}}},
    {{{"+", "="}, {"-", "="}, {"*", "="}}},
}};
constexpr int kCompactWords = kProseWords - 1;

constexpr std::array<const char*, kProseOpenings> kOpenings = {
    "",          "Sum: ",    "Step by step: ",  "Work from the right. ",
    "Columns: ", "We get: ", "Right to left: ", "Start with the ones. "};

int op_index(ArithmeticOp op) {
  return op == ArithmeticOp::Add ? 0 : op == ArithmeticOp::Sub ? 1 : 2;
}

// ", write 5 and carry 1." and its variants; `passed_word` is "carry" or "borrow".
void write_clause(std::ostringstream& out, int clause, int64_t written, int64_t passed,
                  const char* passed_word, const char* passed_participle) {
  switch (clause) {
    case 0:
      out << ", write " << written;
      if (passed) out << " and " << passed_word << ' ' << passed;
      break;
    case 1:
      out << ", so put down " << written;
      if (passed) out << " and " << passed_word << ' ' << passed;
      break;
    default:
      out << "; " << written << " down";
      if (passed) out << ", " << passed << ' ' << passed_participle;
      break;
  }
  out << '.';
}

void closing_sentence(std::ostringstream& out, int closing, const ArithmeticProblem& p) {
  switch (closing) {
    case 0:
      out << "So the answer is " << p.answer << '.';
      break;
    case 1:
      out << "The answer is " << p.answer << '.';
      break;
    case 2:
      out << "That gives " << p.answer << '.';
      break;
    case 3:
      out << "So " << p.prompt << p.answer << '.';
      break;
    default:
      out << "Result: " << p.answer << '.';
      break;
  }
}

}  // namespace

void check_prose_options(const ProseOptions& options) {
  TRIDENT_USER_CHECK(
      std::isfinite(options.tagged_share) && options.tagged_share >= 0 && options.tagged_share <= 1,
      "data.prose_tagged_share = ", options.tagged_share,
      " must be in [0, 1] (the share of documents in the tagged "
      "<think>…</think><answer>…</answer> form)");
}

std::string prose_solution(const ArithmeticProblem& problem, const ProseStyle& style) {
  TRIDENT_CHECK(style.opening >= 0 && style.opening < kProseOpenings && style.words >= 0 &&
                    style.words < kProseWords && style.clause >= 0 &&
                    style.clause < kProseClauses && style.closing >= 0 &&
                    style.closing < kProseClosings,
                "prose style out of range");
  const Words words =
      kWords[static_cast<size_t>(style.words)][static_cast<size_t>(op_index(problem.op))];
  // A carry is added in every op but subtraction, where the borrow is taken away.
  const Words received =
      problem.op == ArithmeticOp::Sub ? words : kWords[static_cast<size_t>(style.words)][0];
  const bool sub = problem.op == ArithmeticOp::Sub;
  const std::vector<Column> columns = columns_of(problem);
  std::ostringstream out;
  out << kOpenings[static_cast<size_t>(style.opening)];
  if (style.words == kCompactWords) {
    for (size_t i = 0; i < columns.size(); ++i) {
      const Column& c = columns[i];
      out << (i ? ";" : "") << c.left << words.op << c.right;
      if (c.carried) out << received.op << c.carried;
      out << words.is << c.value;
    }
    out << ". ";
    closing_sentence(out, style.closing, problem);
    return out.str();
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    const Column& c = columns[i];
    out << c.left << ' ' << words.op << ' ' << c.right;
    if (c.carried) out << ' ' << received.op << ' ' << c.carried;
    out << ' ' << words.is << ' ' << c.value;
    if (i + 1 < columns.size()) {
      write_clause(out, style.clause, c.value % 10, c.passed, sub ? "borrow" : "carry",
                   sub ? "borrowed" : "carried");
    } else {
      out << '.';  // the last column is written whole
    }
    out << ' ';
  }
  closing_sentence(out, style.closing, problem);
  return out.str();
}

ProseDocument make_prose_document(uint64_t seed, Split split, uint64_t index,
                                  const ArithmeticOptions& task, const ProseOptions& options) {
  check_prose_options(options);
  ProseDocument doc;
  doc.problem = make_problem(seed, split, index, task);
  // A stream of its own: the problems are make_problem's whatever the share, and the share
  // changes which documents are tagged, not the wording of the others.
  const CounterRng rng(seed,
                       stream_id(std::string("synthetic/arithmetic_prose/") + split_name(split)));
  const uint64_t base = index * 5;
  doc.tagged = static_cast<double>(rng.uniform(base)) < options.tagged_share;
  if (doc.tagged) {
    doc.completion = doc.problem.completion;
    return doc;
  }
  doc.style = ProseStyle{static_cast<int>(rng.bits(base + 1) % kProseOpenings),
                         static_cast<int>(rng.bits(base + 2) % kProseWords),
                         static_cast<int>(rng.bits(base + 3) % kProseClauses),
                         static_cast<int>(rng.bits(base + 4) % kProseClosings)};
  doc.completion = prose_solution(doc.problem, doc.style);
  return doc;
}

}  // namespace trident::io
