// fixture: core must not include detect
#pragma once
  #  include "detect/b.h"
