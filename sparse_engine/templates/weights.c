/* {{ banner }}
 * Constants of the model: weights, biases, requantization parameters and tables (flash). */
#include "weights.h"

{% for a in arrays %}
/* {{ a.comment }} */
const {{ a.ctype }} {{ a.name }}[{{ a.length }}] __attribute__((aligned(4))) = {
{{ a.body }}
};
{% endfor %}
