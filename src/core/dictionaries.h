// The dictionaries shared by the stages (sensor names, anomaly types, model versions, asset ids):
// the ids in ReadingBatch (core/batch.h) index these interners. One set per pipeline, owned by it.
#pragma once
#include "core/interner.h"

namespace iotpipe {

struct Dictionaries {
  Interner sensors{1u << 24};
  Interner types{256};
  Interner models{4096};
  Interner assets{1u << 16};  // wire asset_id values (detect/asset.h)
  Dictionaries() { types.Intern("other"); }
};

}  // namespace iotpipe
