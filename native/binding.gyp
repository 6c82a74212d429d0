{
  "targets": [
    {
      "target_name": "cellblock_native",
      "sources": [
        "src/addon.cc",
        "src/container.cc",
        "src/recipe.cc",
        "src/namespaces.cc",
        "src/mounts.cc",
        "src/cgroup_join.cc",
        "src/rlimits.cc",
        "src/credentials.cc",
        "src/seccomp.cc",
        "src/steps.cc",
        "src/lockfile.cc",
        "src/pidfd.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags": ["-O2"]
    }
  ]
}
