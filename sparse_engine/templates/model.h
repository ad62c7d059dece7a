/* {{ banner }} */
#ifndef MODEL_H
#define MODEL_H

#include <stdint.h>

#define MODEL_INPUT_SIZE {{ input_size }}   /* int8 elements, shape {{ input_shape }} (ONNX order) */
#define MODEL_OUTPUT_SIZE {{ output_size }} /* int8 elements, shape {{ output_shape }} (ONNX order) */
#define MODEL_ARENA_SIZE {{ arena_size }}   /* bytes of activations, static, in .bss */
#define MODEL_NUM_LAYERS {{ num_layers }}
#define MODEL_INPUT_SCALE {{ input_scale }}f
#define MODEL_INPUT_ZERO_POINT {{ input_zp }}
#define MODEL_OUTPUT_SCALE {{ output_scale }}f
#define MODEL_OUTPUT_ZERO_POINT {{ output_zp }}

/* Runs one inference: input and output are int8, quantized with the scales above. Returns 0. */
int model_run(const int8_t *input, int8_t *output);

#endif
