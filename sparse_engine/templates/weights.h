/* {{ banner }} */
#ifndef MODEL_WEIGHTS_H
#define MODEL_WEIGHTS_H

#include <stdint.h>

{% for a in arrays %}extern const {{ a.ctype }} {{ a.name }}[{{ a.length }}];
{% endfor %}
#endif
