// fixture: the top layer, includes everything below
#include "core/a.h"
#include "detect/b.h"
#include "pipeline/c.h"
#include "unknown_dir/x.h"
#include <vector>
