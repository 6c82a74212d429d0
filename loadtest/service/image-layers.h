/* The image's layers mounted read-only at target, for the benchmarks' C runners (bare-runner.c,
 * ../overlay-fresh.c): an overlay of them (lowerdir as overlayfs takes it, top layer first), or,
 * for an image of one layer, a read-only bind of it (overlayfs wants two lowers or an upper).
 * Returns 0, or -1 with errno set and *step naming what failed. mount_image_proc, below, adds
 * the proc. */
#ifndef CELLBLOCK_LOADTEST_IMAGE_LAYERS_H
#define CELLBLOCK_LOADTEST_IMAGE_LAYERS_H

#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

static int mount_image_layers(const char *lowerdir, const char *target, const char **step) {
  if (strchr(lowerdir, ':') != NULL) {
    char options[8192];
    snprintf(options, sizeof options, "lowerdir=%s", lowerdir);
    *step = "mount overlay of the image's layers";
    return mount("overlay", target, "overlay", MS_RDONLY, options);
  }
  *step = "bind the image's layer";
  if (mount(lowerdir, target, NULL, MS_BIND, NULL) != 0) return -1;
  *step = "remount the layer read-only";
  return mount(NULL, target, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL);
}

/* A proc mounted on target/proc, as the container's engine mounts one (programs such as the java
 * launcher find their own files through /proc/self/exe). Skipped when the image has no /proc
 * directory. Returns 1 when mounted, 0 when skipped, or -1 with errno set. */
static int mount_image_proc(const char *target) {
  char proc[4200];
  struct stat st;
  snprintf(proc, sizeof proc, "%s/proc", target);
  if (stat(proc, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  return mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0 ? 1 : -1;
}

#endif
