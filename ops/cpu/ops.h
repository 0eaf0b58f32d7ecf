#pragma once
// The CPU op library: the oracle every other backend is compared with.
#include "ops/cpu/attention.h"
#include "ops/cpu/balance_loss.h"
#include "ops/cpu/cross_entropy.h"
#include "ops/cpu/elementwise.h"
#include "ops/cpu/latent_attention.h"
#include "ops/cpu/linear.h"
#include "ops/cpu/optimizer.h"
#include "ops/cpu/rope.h"
#include "ops/cpu/router.h"
#include "ops/cpu/rows.h"
#include "ops/cpu/vocab_shard.h"
