#include "runtime/train/grpo/rewards.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/core/error.h"
#include "runtime/io/synthetic_task.h"

namespace trident::train::grpo {

RuleReward rule_reward(const RewardInput& input, const RuleRewardWeights& weights) {
  RuleReward r;
  r.correct = io::is_correct(input.completion, input.reference);
  r.format = io::format_ok(input.completion);
  r.reward = weights.accuracy * (r.correct ? 1.0 : 0.0) + weights.format * (r.format ? 1.0 : 0.0);
  return r;
}

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { TRIDENT_CHECK(::pipe(fd) == 0, "pipe failed: errno ", errno); }
  ~Pipe() { close_both(); }
  void close_end(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
  void close_both() { close_end(0), close_end(1); }
};

struct ProcessOutput {
  std::string out;
  std::string err;
  int status = 0;
  bool timed_out = false;
};

// Starts `sh -c command` in a process group of its own with the pipes as its standard streams.
// posix_spawn rather than fork: fork copies the page tables of a trainer that may map hundreds
// of gigabytes, and is unsafe once CUDA, NCCL or MPI have started threads; glibc's posix_spawn
// shares the address space until the exec.
//
// A stop signal to the job (SIGTERM, SIGUSR1, SIGINT: save after this step and stop,
// runtime/train/stop_signal.h) reaches every process of the step, this one included, under
// Slurm's process tracking. The step still needs these rewards to finish, so the command ignores
// them: they are blocked from the spawn on, and the shell's `trap ''` ignores them before the
// command starts (ignored and blocked alike pass through exec); the timeout still kills it.
pid_t spawn_command(const std::string& command, const Pipe& in, const Pipe& out, const Pipe& err) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  TRIDENT_CHECK(::posix_spawn_file_actions_init(&actions) == 0, "posix_spawn_file_actions_init");
  TRIDENT_CHECK(::posix_spawnattr_init(&attributes) == 0, "posix_spawnattr_init");
  ::posix_spawn_file_actions_adddup2(&actions, in.fd[0], 0);
  ::posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
  ::posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
  for (const Pipe* pipe : {&in, &out, &err}) {
    for (const int fd : pipe->fd) ::posix_spawn_file_actions_addclose(&actions, fd);
  }
  sigset_t blocked;
  ::pthread_sigmask(SIG_SETMASK, nullptr, &blocked);
  for (const int stop : {SIGTERM, SIGUSR1, SIGINT}) ::sigaddset(&blocked, stop);
  sigset_t defaults;  // this process ignores SIGPIPE (below); the command gets the default
  ::sigemptyset(&defaults);
  ::sigaddset(&defaults, SIGPIPE);
  ::posix_spawnattr_setflags(
      &attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  ::posix_spawnattr_setpgroup(&attributes, 0);
  ::posix_spawnattr_setsigmask(&attributes, &blocked);
  ::posix_spawnattr_setsigdefault(&attributes, &defaults);

  const std::string script = "trap '' TERM USR1 INT; " + command;  // same line numbers
  char* const argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"),
                        const_cast<char*>(script.c_str()), nullptr};
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attributes);
  TRIDENT_CHECK(rc == 0, "posix_spawn of /bin/sh failed: ", std::strerror(rc));
  return pid;
}

// Runs the command, writing `input` to its stdin while reading stdout and stderr (poll, so
// neither side blocks on a full pipe), killing its process group after timeout_s.
ProcessOutput run_command(const std::string& command, const std::string& input, double timeout_s) {
  Pipe in, out, err;
  ::signal(SIGPIPE, SIG_IGN);  // a command that exits without reading all input must not kill us
  const pid_t pid = spawn_command(command, in, out, err);  // in its own process group already
  in.close_end(0), out.close_end(1), err.close_end(1);
  ::fcntl(in.fd[1], F_SETFL, O_NONBLOCK);

  ProcessOutput result;
  size_t written = 0;
  if (input.empty()) in.close_end(1);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000.0));
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    std::vector<pollfd> fds;
    if (in.fd[1] >= 0) fds.push_back({in.fd[1], POLLOUT, 0});
    if (out.fd[0] >= 0) fds.push_back({out.fd[0], POLLIN, 0});
    if (err.fd[0] >= 0) fds.push_back({err.fd[0], POLLIN, 0});
    const int ready =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno == EINTR) continue;
    TRIDENT_CHECK(ready >= 0, "poll failed: errno ", errno);
    for (const pollfd& p : fds) {
      if (p.revents == 0) continue;
      if (p.fd == in.fd[1]) {
        const ssize_t n = ::write(p.fd, input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        if ((n < 0 && errno != EAGAIN) || written == input.size()) in.close_end(1);
        continue;
      }
      char buffer[4096];
      const ssize_t n = ::read(p.fd, buffer, sizeof buffer);
      if (n <= 0) {
        if (p.fd == out.fd[0])
          out.close_end(0);
        else
          err.close_end(0);
        continue;
      }
      (p.fd == out.fd[0] ? result.out : result.err).append(buffer, static_cast<size_t>(n));
    }
  }
  in.close_end(1);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.status = status;
  return result;
}

std::string tail(const std::string& text, size_t keep = 400) {
  return text.size() <= keep ? text : "…" + text.substr(text.size() - keep);
}

}  // namespace

std::vector<double> external_rewards(const std::string& command,
                                     const std::vector<RewardInput>& inputs, double timeout_s) {
  TRIDENT_USER_CHECK(!command.empty(), "grpo.reward_command is empty");
  TRIDENT_USER_CHECK(timeout_s > 0, "grpo.reward_timeout_s = ", timeout_s, " must be > 0");
  std::string input;
  for (const RewardInput& in : inputs) {
    input +=
        nlohmann::json{
            {"prompt", in.prompt}, {"completion", in.completion}, {"reference", in.reference}}
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    input += '\n';
  }
  const ProcessOutput run = run_command(command, input, timeout_s);
  const std::string where = "grpo.reward_command '" + command + "'";
  TRIDENT_USER_CHECK(!run.timed_out, where,
                     " did not finish within grpo.reward_timeout_s = ", timeout_s, " s (killed)");
  if (WIFSIGNALED(run.status)) {
    TRIDENT_USER_FAIL(where, " was killed by signal ", WTERMSIG(run.status),
                      "; stderr: ", tail(run.err));
  }
  TRIDENT_USER_CHECK(WIFEXITED(run.status) && WEXITSTATUS(run.status) == 0, where,
                     " exited with status ", WEXITSTATUS(run.status), "; stderr: ", tail(run.err));
  return parse_reward_output(run.out, inputs.size(), where);
}

std::vector<double> parse_reward_output(const std::string& out, size_t expected,
                                        const std::string& where) {
  std::vector<double> rewards;
  std::istringstream lines(out);
  std::string line;
  int64_t number = 0;
  while (std::getline(lines, line)) {
    ++number;
    const size_t first = line.find_first_not_of(" \t\r");
    TRIDENT_USER_CHECK(first != std::string::npos, where, " wrote an empty line ", number,
                       " (one number per completion expected)");
    const size_t last = line.find_last_not_of(" \t\r");
    const std::string word = line.substr(first, last - first + 1);
    char* end = nullptr;
    const double value = std::strtod(word.c_str(), &end);
    // The whole word must be the number (a NUL inside it would end strtod's view early).
    TRIDENT_USER_CHECK(end == word.c_str() + word.size() && !word.empty() && std::isfinite(value),
                       where, " wrote '", tail(word, 40), "' on line ", number,
                       ", not a finite number");
    rewards.push_back(value);
  }
  TRIDENT_USER_CHECK(rewards.size() == expected, where, " wrote ", rewards.size(),
                     " reward lines for ", expected, " completions (one per line expected)");
  return rewards;
}

}  // namespace trident::train::grpo
