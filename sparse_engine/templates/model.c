/* {{ banner }} */
#include "model.h"

#include "kernels.h"
#include "weights.h"

#ifdef MODEL_PROFILE
void model_mark(int32_t layer);
#define MODEL_MARK(i) model_mark(i)
#else
#define MODEL_MARK(i) ((void)0)
#endif

static int8_t arena[MODEL_ARENA_SIZE > 0 ? MODEL_ARENA_SIZE : 8] __attribute__((aligned(8)));
{% if scratch_size > 0 %}
/* widened int16 rows of the DSP kernels ({{ kernels }} kernels), shared by all layers */
static int16_t scratch[{{ scratch_size }}] __attribute__((aligned(8)));
{% endif %}
{% for L in layers %}
/* layer {{ L.index }}: {{ L.onnx_op }} '{{ L.name }}' -> {{ L.fn }}, out {{ L.out_shape }} */
static const {{ L.struct }} L{{ L.index }} = {
{% for f in L.fields %}    .{{ f[0] }} = {{ f[1] }},
{% endfor %}};
{% endfor %}

int model_run(const int8_t *input, int8_t *output) {
    (void)input;
    (void)output;
    (void)arena;
{% for L in layers %}    MODEL_MARK({{ L.index }});
    {{ L.fn }}(&L{{ L.index }}, {{ L.args }});
{% endfor %}    MODEL_MARK({{ layers|length }});
    return 0;
}
