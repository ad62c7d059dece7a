/* Int8 kernels of SparseEngine, one header per op family (se_*.h, included here). Each family has
 * a portable C kernel (se_*_s8, kernels.c) and, where it pays, a Cortex-M DSP-extension kernel
 * (se_*_s8_dsp, kernels_dsp.c). All compute exactly what the NumPy simulator computes
 * (sparse_engine/simulator.py): TFLite's integer requantization (se_math.h) where TFLite defines
 * the op. The parameter structs are filled by the generator (sparse_engine/bindings/, one module
 * per family, which also decides which variant a layer runs and sizes its scratch).
 * Common to every kernel: int8 NHWC activations, `in` and `out` separate unless the family says
 * otherwise, no allocation; `scratch` is the model's static int16 buffer, used by DSP kernels only;
 * `rq`, when not NULL: the generator proved |acc| * 2 < 2^31 and found no left shift in the layer,
 * so the DSP kernels requantize with SMMULR (the same bits, fewer instructions) from this table,
 * per channel {mult, 2^(right shift - 1) or 0} (bindings/common.py requant_table). */
#ifndef SPARSE_ENGINE_KERNELS_H
#define SPARSE_ENGINE_KERNELS_H

#include <stdint.h>

#define SE_MAX_DIMS 6

#include "se_conv.h"
#include "se_fc.h"
#include "se_sparse.h"
#include "se_matmul.h"
#include "se_binary.h"
#include "se_pool.h"
#include "se_copy.h"
#include "se_softmax.h"
#include "se_norm.h"
#include "se_attention.h"

#endif
