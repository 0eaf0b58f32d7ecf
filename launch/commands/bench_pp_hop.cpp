#include "launch/commands/bench_pp_hop.h"

#include <mpi.h>

#include <vector>

#include "ops/ops.h"

namespace trident::bench_pp {

namespace {
// Half of each of `repeats` ping-pongs (after one warm-up) of `buffer` between this rank and
// rank ^ 1, on tags `tag` and `tag` + 1: the even rank pings.
std::vector<double> half_ping_pongs(parallel::comm::Communicator& link, Tensor& buffer, int repeats,
                                    int tag) {
  const int rank = link.rank();
  const int peer = rank ^ 1;
  std::vector<double> hops;
  for (int i = 0; i < repeats + 1; ++i) {
    const Clock::time_point start = Clock::now();
    if (rank % 2 == 0) {
      link.send(buffer, peer, tag)->wait();
      link.recv(buffer, peer, tag + 1)->wait();
    } else {
      link.recv(buffer, peer, tag)->wait();
      link.send(buffer, peer, tag + 1)->wait();
    }
    if (i > 0) hops.push_back(seconds_since(start) / 2);
  }
  return hops;
}
}  // namespace

// One activation's hop between neighbouring ranks as the executor sees it (the modelled
// delay plus MPI, progress threads and the OS scheduler): half a ping-pong over the link,
// pairs (0,1), (2,3), ... at once, median over `repeats`, the slowest pair.
double measured_hop_seconds(parallel::comm::Communicator& link, const StageShape& shape,
                            int repeats, bool best) {
  std::vector<double> hops;
  if ((link.rank() ^ 1) < link.size()) {
    Tensor buffer = Tensor::zeros({shape.tokens, shape.hidden});
    hops = half_ping_pongs(link, buffer, repeats, 1);
  }
  return max_over_ranks(hops.empty() ? 0.0 : typical(hops, best));
}

// The same hop while the cores are busy, as they are during a step: pairs (0,1), (2,3), ...
// take turns at the ping-pong while every other rank runs GEMMs back to back. A rank blocked
// in a receive then has to win a core back from computing ranks to see its data (its thread
// wakes at the link's deadline and tests MPI), which a quiet machine hides.
// With no rank left to compute (pp = 2) this is the quiet hop. The median, also with --best:
// this is a distribution of wake-up delays whose fastest sample is the exception.
double measured_busy_hop_seconds(parallel::comm::Communicator& link, const StageShape& shape,
                                 int repeats) {
  const int rank = link.rank();
  const int ranks = link.size();
  const Tensor x = random_tensor(shape.tokens, shape.hidden, 19, 0, 1.0f);
  const Tensor w = random_tensor(shape.hidden, shape.hidden, 23, 0, 0.05f);
  Tensor y = Tensor::empty({shape.tokens, shape.hidden});
  Tensor buffer = Tensor::zeros({shape.tokens, shape.hidden});
  std::vector<double> hops;
  for (int turn = 0; 2 * turn + 1 < ranks; ++turn) {
    const bool pinging = rank / 2 == turn;
    MPI_Request request;
    if (pinging) {
      hops = half_ping_pongs(link, buffer, repeats, 3);
      sleeping_barrier();
    } else {
      // Compute until the pair is done (it joins the barrier last).
      MPI_Ibarrier(MPI_COMM_WORLD, &request);
      for (int done = 0; !done;) {
        ops::linear_forward(x, w, y);
        MPI_Test(&request, &done, MPI_STATUS_IGNORE);
      }
    }
  }
  return max_over_ranks(hops.empty() ? 0.0 : typical(hops, false));
}

}  // namespace trident::bench_pp
