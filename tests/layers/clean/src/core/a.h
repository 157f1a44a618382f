// fixture: the bottom layer
#pragma once
#include <string>
