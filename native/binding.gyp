{
  "targets": [
    {
      "target_name": "cellblock_native",
      "sources": [
        "src/addon.cc",
        "src/container.cc",
        "src/recipe.cc",
        "src/clone_vm.cc",
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
      # NODE_ADDON_API_CPP_EXCEPTIONS_ALL: a C++ exception that escapes a call from JS (a
      # std::bad_alloc, a std::system_error) becomes a JS Error there, where without it only
      # Napi::Error does and any other ends the worker in std::terminate. A backstop: the
      # addon's own failures are typed (SetupError, with step and errno) before they get there.
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "cflags": ["-O2"]
    }
  ]
}
