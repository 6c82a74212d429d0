#include "steps.h"

namespace cb {

const char* stepName(uint32_t step) {
  static const char* const names[] = {
#define CB_STEP_NAME(name) #name,
      CB_STEPS(CB_STEP_NAME)
#undef CB_STEP_NAME
  };
  if (step >= sizeof(names) / sizeof(names[0])) return "unknown";
  return names[step];
}

}  // namespace cb
