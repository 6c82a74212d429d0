#include "credentials.h"

#include <sys/prctl.h>

#include "sys.h"

namespace cb {

Failure dropCapabilityBounds(const ContainerState& s) {
  for (int cap = 0; cap <= s.capLastCap; cap++) {
    CB_TRY(step_drop_bounding_set, sys(SYS_prctl, PR_CAPBSET_DROP, cap, 0, 0, 0));
  }
  CB_TRY(step_clear_ambient_caps,
         sys(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
  CB_TRY(step_setgroups, sys(SYS_setgroups, 0, 0));
  CB_TRY(step_no_new_privs, sys(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  return ok();
}

Failure becomeSandboxUser(const ContainerState& s) {
  CB_TRY(step_setresgid, sys(SYS_setresgid, s.gid, s.gid, s.gid));
  // With every uid non-zero (and no SECBIT_KEEP_CAPS) the kernel clears the permitted and
  // effective sets here.
  CB_TRY(step_setresuid, sys(SYS_setresuid, s.uid, s.uid, s.uid));
  return ok();
}

}  // namespace cb
