// fixture: includes its own layer and below
#include "detect/b.h"
#include "core/a.h"
