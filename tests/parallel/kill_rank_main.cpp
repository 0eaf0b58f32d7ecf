// A job in which one rank dies before a collective. The survivors must not hang: their wait
// times out, the arrival probe finds the dead rank silent, and abort_job() prints a message
// naming it before tearing the job down. Driven by check_kill_rank.py.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "parallel/comm/mpi_backend.h"
#include "parallel/mpi_session.h"

int main(int argc, char** argv) {
  using namespace trident::parallel;
  using namespace trident::parallel::comm;
  MpiSession session(&argc, &argv);
  const int victim = argc > 1 ? std::atoi(argv[1]) : 1;
  try {
    CommOptions options;
    options.timeout_seconds = 3.0;
    options.probe_grace_seconds = 1.0;
    MpiBackend comm(MpiComm::world(), options);
    for (int step = 0; step < 4; ++step) {
      if (step == 2 && comm.rank() == victim) {
        std::fprintf(stderr, "[rank %d] dying before step %d\n", comm.rank(), step);
        std::fflush(stderr);
        std::raise(SIGKILL);
      }
      trident::Tensor grad = trident::Tensor::full({1024}, 1.0f);
      comm.all_reduce(grad, ReduceOp::Sum)->wait();
    }
    std::printf("[rank %d] all steps completed\n", comm.rank());
  } catch (const std::exception& e) {
    abort_job(e.what(), 3);
  }
  return 0;
}
