#pragma once
// The line every rank prints at start-up saying where it landed: world rank, host, node,
// local rank, its coordinates on every mesh axis, the device it computes on and its CPU
// threads (ops/cpu_threads.h). Launch
// scripts and tests grep it (prefix "trident layout:"), so its key=value form is stable.
#include <string>

#include "parallel/mesh.h"

namespace trident::launch {

// "trident layout: rank=3 world=4 host=node01 node=0/1 local_rank=3 pp=0 dp=1 tp=1 ep=1
//  edp=0 etp=0 device=cpu threads=4"; train_device is train.device ("cpu" | "cuda").
std::string rank_layout_line(const parallel::Mesh& mesh, const std::string& train_device);

// Every rank writes its own line to stderr (not gathered: a rank that hangs later has
// already said where it was).
void print_rank_layout(const parallel::Mesh& mesh, const std::string& train_device);

// A training command's start on every rank: configures the rank's CPU threads
// (rank_threads.h; collective over the mesh's node), prints its layout line, and on the
// `primary` rank logs how the thread count was chosen.
void start_rank(const parallel::Mesh& mesh, bool primary, const std::string& train_device);

}  // namespace trident::launch
