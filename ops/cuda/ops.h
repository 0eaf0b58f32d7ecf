#pragma once
// The CUDA op library: the GPU counterpart of ops/cpu/ops.h, checked op by op against it.
#include "ops/cuda/attention.h"
#include "ops/cuda/balance_loss.h"
#include "ops/cuda/blas_lt.h"
#include "ops/cuda/cross_entropy.h"
#include "ops/cuda/cudnn_handle.h"
#include "ops/cuda/device.h"
#include "ops/cuda/elementwise.h"
#include "ops/cuda/latent_attention.h"
#include "ops/cuda/linear.h"
#include "ops/cuda/optimizer.h"
#include "ops/cuda/rope.h"
#include "ops/cuda/router.h"
