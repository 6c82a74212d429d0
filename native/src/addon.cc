// N-API glue: the `Container` class JS sees. It converts JS options into the plain C++ structs of
// container.h and delivers a container's events ("ready", "exit", "gone") to one JS callback:
// the supervisor thread's through a ThreadSafeFunction, so that nothing blocks Node's event loop
// or libuv's pool; a started run's end straight from the report pipe, which the event loop
// watches (one wake-up between init's "done" and the result, not two).
#include <napi.h>
#include <sys/xattr.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

#include "cgroup_join.h"
#include "container.h"
#include "lockfile.h"
#include "pidfd.h"
#include "seccomp.h"
#include "steps.h"

namespace {

using cb::ContainerState;
using cb::ExitReport;

std::string getString(const Napi::Object& o, const char* key, bool required = true) {
  Napi::Value v = o.Get(key);
  if (v.IsString()) return v.As<Napi::String>().Utf8Value();
  if (!required && (v.IsUndefined() || v.IsNull())) return std::string();
  throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a string");
}

/** JS passes milliseconds; the engine counts nanoseconds. Saturated at 2^62 ns (~146 years), so
 * that init's deadline, a CLOCK_MONOTONIC reading plus the wall limit, cannot wrap either (the
 * cast of a double past 2^63 is undefined, and was INT64_MIN: a run killed at once); NaN and
 * anything not above 0 is 0. src/sandbox/spec.ts bounds the time limits far below this. */
int64_t msToNs(double ms) {
  constexpr int64_t kMaxNs = INT64_C(1) << 62;
  if (!(ms > 0)) return 0;
  if (ms >= static_cast<double>(kMaxNs) / 1e6) return kMaxNs;
  return static_cast<int64_t>(ms * 1e6);
}

double getNumber(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a number");
  }
  return v.As<Napi::Number>().DoubleValue();
}

bool getBool(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsBoolean()) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a boolean");
  }
  return v.As<Napi::Boolean>().Value();
}

int64_t getInt(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a number");
  }
  return v.As<Napi::Number>().Int64Value();
}

std::vector<int> getDescriptors(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be an array");
  }
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value item = a.Get(i);
    int64_t fd = item.IsNumber() ? item.As<Napi::Number>().Int64Value() : -1;
    if (fd < 0 || fd > INT32_MAX) {
      throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must hold descriptors");
    }
    out.push_back(static_cast<int>(fd));
  }
  return out;
}

/** A descriptor, or -1 when the option is absent. */
int getOptionalDescriptor(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return -1;
  double value = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  int64_t fd = value == static_cast<double>(static_cast<int64_t>(value)) ? static_cast<int64_t>(value) : -1;
  if (fd < 0 || fd > INT32_MAX) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be a descriptor");
  }
  return static_cast<int>(fd);
}

std::vector<std::string> getStrings(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsArray()) {
    throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must be an array");
  }
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value item = a.Get(i);
    if (!item.IsString()) {
      throw Napi::TypeError::New(o.Env(), std::string("option ") + key + " must hold strings");
    }
    out.push_back(item.As<Napi::String>().Utf8Value());
  }
  return out;
}

[[noreturn]] void throwSetupError(Napi::Env env, const cb::SetupError& e) {
  Napi::Error error = Napi::Error::New(env, std::string("sandbox setup failed at ") +
                                                cb::stepName(e.failure.step));
  error.Set("step", cb::stepName(e.failure.step));
  error.Set("errno", Napi::Number::New(env, e.failure.err));
  throw error;
}

/** Where a started run's end stands; touched only on the JS thread. Shared by the wrap and the
 * supervisor's events, so that whichever comes first (the pipe's "done", or init reaped)
 * delivers "exit", exactly once. */
struct RunEndWatch {
  /** The report pipe's poll handle: initialized once the container is ready (armRunEndWatch),
   * started by start while a started run may still end. */
  uv_poll_t* poll = nullptr;
  bool watching = false;  // poll started; the wrap is ref'd meanwhile
  cb::Failure failure = cb::ok();
  bool exitDelivered = false;
};

/** An event from the supervisor thread, delivered on the JS thread. */
struct Event {
  enum Kind { kReady, kSetupFailed, kGone } kind;
  ExitReport exit;
  std::shared_ptr<RunEndWatch> watch;
  /** With the gone event: released on the JS thread, the only one that touches go/cancel. */
  std::shared_ptr<ContainerState> state;
};

/** The callback's arguments for a run's end: "exit", then the fields in the order of
 * RawExitArguments in src/sandbox/native.ts, which builds the object. Positional: setting each
 * property from here was the costlier part of handing the exit over (on the job's critical path,
 * after an idle gap, ~65 us for the object against ~40 us for these values). */
std::vector<napi_value> exitArguments(Napi::Env env, ExitReport& r) {
  const char* status = r.programStatusKind == cb::kProgramExited     ? "exited"
                       : r.programStatusKind == cb::kProgramSignaled ? "signaled"
                                                                     : "not_run";
  const bool failed = r.failure.failed();
  return {
      Napi::String::New(env, "exit"),
      Napi::Boolean::New(env, r.started),
      Napi::String::New(env, status),
      Napi::Number::New(env, r.programStatusValue),
      Napi::Boolean::New(env, (r.killReasons & cb::kKilledCpu) != 0),
      Napi::Boolean::New(env, (r.killReasons & cb::kKilledWall) != 0),
      Napi::Boolean::New(env, (r.killReasons & cb::kKilledOutput) != 0),
      Napi::Boolean::New(env, (r.killReasons & cb::kKilledCancel) != 0),
      Napi::Number::New(env, static_cast<double>(r.wallTimeNs)),
      Napi::Number::New(env, static_cast<double>(r.execNs)),
      Napi::Buffer<char>::Copy(env, r.stdoutData.data(), r.stdoutData.size()),
      Napi::Buffer<char>::Copy(env, r.stderrData.data(), r.stderrData.size()),
      Napi::Number::New(env, static_cast<double>(r.stdoutBytes)),
      Napi::Number::New(env, static_cast<double>(r.stderrBytes)),
      failed ? Napi::Value(Napi::String::New(env, cb::stepName(r.failure.step))) : env.Undefined(),
      Napi::Number::New(env, failed ? r.failure.err : 0),
      r.accountingRead ? Napi::Value(Napi::String::New(env, r.accountingText.data(), r.accountingText.size())) : env.Undefined(),
      Napi::Number::New(env, static_cast<double>(r.sampledPeakMemoryBytes)),
  };
}

class ContainerWrap : public Napi::ObjectWrap<ContainerWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Container",
                       {InstanceMethod("start", &ContainerWrap::Start),
                        InstanceMethod("armRunEndWatch", &ContainerWrap::ArmRunEndWatch),
                        InstanceMethod("cancel", &ContainerWrap::Cancel),
                        InstanceMethod("ref", &ContainerWrap::Ref),
                        InstanceMethod("unref", &ContainerWrap::Unref),
                        InstanceAccessor("initPid", &ContainerWrap::InitPid, nullptr)});
  }

  /** new Container(prepareOptions, onEvent(kind: "ready" | "exit", payload?)) */
  ContainerWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContainerWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsFunction()) {
      throw Napi::TypeError::New(env, "Container(options, onEvent)");
    }
    Napi::Object o = info[0].As<Napi::Object>();
    cb::PrepareOptions options;
    options.rootDir = getString(o, "rootDir");
    options.workDirHost = getString(o, "workDirHostPath");
    options.workDir = getString(o, "workDir");
    options.hostname = getString(o, "hostname");
    options.tmpBytes = getInt(o, "tmpBytes");
    options.cgroupJoinPaths = getStrings(o, "cgroupJoinPaths");
    options.cgroupCloneIntoPath = getString(o, "cgroupCloneIntoPath", false);
    options.cpuUsagePath = getString(o, "cpuUsagePath", false);
    options.cpuUsageScaleNs = getInt(o, "cpuUsageScaleNs");
    options.memorySamplePath = getString(o, "memorySamplePath", false);
    options.cpuWeightPath = getString(o, "cpuWeightPath", false);
    if (!options.cpuWeightPath.empty()) {
      options.backgroundCpuWeight = getInt(o, "backgroundCpuWeight");
    }
    options.tcpRmem = getString(o, "tcpRmem");
    options.stdinPipeFd = getOptionalDescriptor(o, "stdinPipeFd");
    options.stdoutPipeFd = getOptionalDescriptor(o, "stdoutPipeFd");
    options.stderrPipeFd = getOptionalDescriptor(o, "stderrPipeFd");
    Napi::Value ignoreSigpipe = o.Get("ignoreSigpipe");
    options.ignoreSigpipe = ignoreSigpipe.IsBoolean() && ignoreSigpipe.As<Napi::Boolean>().Value();
    Napi::Value controllingTerminal = o.Get("controllingTerminal");
    options.controllingTerminal = controllingTerminal.IsBoolean() && controllingTerminal.As<Napi::Boolean>().Value();
    try {
      state_ = cb::createContainerState(options);
    } catch (const cb::SetupError& e) {
      throwSetupError(env, e);
    }
    // Set to false on the JS thread once the TSFN is finalized (released and drained): after that
    // ref/unref would touch freed memory.
    auto alive = new std::shared_ptr<bool>(tsfnAlive_);
    tsfn_ = Napi::ThreadSafeFunction::New(
        env, info[1].As<Napi::Function>(), "cellblock-container", 0, 1,
        [](Napi::Env, std::shared_ptr<bool>* flag) {
          **flag = false;
          delete flag;
        },
        alive);
    // From here on the TSFN holds the event loop until released: released once by the "gone"
    // callback when a supervisor thread runs, else here, whatever fails before one does (the
    // callbacks' std::function copies or the async context may throw std::bad_alloc, the
    // persistent reference a Napi::Error), or the worker would never exit by itself.
    try {
      startSupervisor(env, info[1].As<Napi::Function>());
    } catch (const cb::SetupError& e) {
      // No supervisor thread: "gone", whose delivery releases the TSFN, never comes. The
      // state's descriptors and stacks go with state_ as the constructor unwinds.
      tsfn_.Release();
      throwSetupError(env, e);
    } catch (...) {
      tsfn_.Release();
      throw;
    }
  }

  // Reached with a started poll only when the environment is torn down (a started poll keeps the
  // wrap alive); with one only armed, when the ready container is collected unused.
  ~ContainerWrap() override { closePoll(*watch_); }

 private:
  /** What the constructor does once the TSFN exists: the callback kept, and the supervisor thread
   * started with callbacks that deliver its events through the TSFN. Throws cb::SetupError where
   * no thread could be started; the TSFN is the caller's to release if anything throws. */
  void startSupervisor(Napi::Env env, Napi::Function onEvent) {
    callback_ = Napi::Persistent(onEvent);
    asyncContext_ = std::make_unique<Napi::AsyncContext>(env, "cellblock-container");
    Napi::ThreadSafeFunction tsfn = tsfn_;
    auto deliver = [](Napi::Env env, Napi::Function callback, Event* event) {
      if (env != nullptr && callback != nullptr) {
        try {
          if (event->kind == Event::kReady) {
            callback.Call({Napi::String::New(env, "ready")});
          } else if (event->kind == Event::kSetupFailed) {
            if (event->watch) event->watch->exitDelivered = true;
            callback.Call(exitArguments(env, event->exit));
          } else {
            // init is reaped: a run whose "done" the event loop has not read yet (or that ended
            // without one) is over now, and its report final.
            RunEndWatch* watch = event->watch.get();
            if (watch && !watch->exitDelivered) {
              cb::readRunEnd(*event->state, watch->failure);
              ExitReport report = takeRunEnd(*watch, *event->state);
              callback.Call(exitArguments(env, report));
            }
            callback.Call({Napi::String::New(env, "gone")});
          }
        } catch (const Napi::Error& error) {
          // A throwing handler must not take the process down from inside the TSFN; report it
          // as JS reports any uncaught exception.
          error.ThrowAsJavaScriptException();
        }
      }
      if (event->state) event->state->release();
      delete event;
    };
    std::weak_ptr<ContainerState> weakState = state_;
    std::weak_ptr<RunEndWatch> weakWatch = watch_;
    cb::launchSupervisor(
        state_,
        [tsfn, deliver]() mutable {
          tsfn.BlockingCall(new Event{Event::kReady, {}, nullptr, nullptr}, deliver);
        },
        [tsfn, deliver, weakWatch](ExitReport report) mutable {
          tsfn.BlockingCall(new Event{Event::kSetupFailed, std::move(report), weakWatch.lock(), nullptr}, deliver);
        },
        [tsfn, deliver, weakState, weakWatch]() mutable {
          tsfn.BlockingCall(new Event{Event::kGone, {}, weakWatch.lock(), weakState.lock()}, deliver);
          tsfn.Release();
        });
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "start(options)");
    if (state_->started) throw Napi::Error::New(env, "container already used");
    // Init died while the container was ready (killed from outside: an OOM kill, a kill by pid):
    // the sandbox's failure, reported as such, so that the owner tears the container down.
    if (state_->finished) throwSetupError(env, cb::SetupError{cb::Failure{cb::step_init_died, ESRCH}});
    Napi::Object o = info[0].As<Napi::Object>();
    cb::StartOptions options;
    options.argv = getStrings(o, "argv");
    if (options.argv.empty()) throw Napi::TypeError::New(env, "argv must not be empty");
    options.env = getStrings(o, "env");
    options.searchPath = getString(o, "searchPath");
    options.cwd = getString(o, "cwd");
    Napi::Value stdinValue = o.Get("stdin");
    if (stdinValue.IsBuffer()) {
      Napi::Buffer<char> b = stdinValue.As<Napi::Buffer<char>>();
      options.stdinData.assign(b.Data(), b.Length());
    }
    options.uid = static_cast<uint32_t>(getInt(o, "uid"));
    options.gid = static_cast<uint32_t>(getInt(o, "gid"));
    options.cpuTimeNs = msToNs(getNumber(o, "cpuTimeMs"));
    options.wallTimeNs = msToNs(getNumber(o, "wallTimeMs"));
    options.outputBytes = getInt(o, "outputBytes");
    options.fileSizeBytes = getInt(o, "fileSizeBytes");
    options.openFiles = getInt(o, "openFiles");
    options.stackBytes = getInt(o, "stackBytes");
    options.tmpBytes = getInt(o, "tmpBytes");
    options.pids = getInt(o, "pids");
    options.cpuRlimitSeconds = getInt(o, "cpuRlimitSeconds");
    options.pollIntervalNs = msToNs(getNumber(o, "pollIntervalMs"));
    options.backgroundAfterCpuNs = msToNs(getNumber(o, "backgroundAfterCpuMs"));
    options.somaxconn = getInt(o, "somaxconn");
    options.stderrToStdout = getBool(o, "stderrToStdout");
    options.accountingFds = getDescriptors(o, "accountingFds");
    try {
      cb::configureProgram(*state_, options);
    } catch (const cb::SetupError& e) {
      throwSetupError(env, e);
    }
    // Before "go": the program's child is often woken on this very core, where it runs only
    // once this thread is back in the event loop. Should the watch fail, the run still ends:
    // the supervisor's "gone" delivers the exit once init is reaped.
    state_->initWaitsAfterDone = watchRunEnd(env);
    cb::sendGo(*state_);
    return env.Undefined();
  }

  /** Initializes the report pipe's poll handle (and makes the read end non-blocking), which
   * start then only has to start: libuv's init costs four system calls (it tries the descriptor
   * with epoll), which this takes off the job's critical path. Called once the container is
   * ready, when the supervisor thread reads the pipe no more; false if it cannot. */
  bool armWatch(Napi::Env env) {
    if (watch_->poll != nullptr) return true;
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) return false;
    auto* poll = new uv_poll_t;
    // uv_poll_init also makes the read end non-blocking.
    if (uv_poll_init(loop, poll, state_->reportRead) != 0) {
      delete poll;
      return false;
    }
    poll->data = this;
    watch_->poll = poll;
    return true;
  }

  Napi::Value ArmRunEndWatch(const Napi::CallbackInfo& info) {
    if (!state_->started && !state_->finished) armWatch(info.Env());
    return info.Env().Undefined();
  }

  /** Watches the report pipe for the run's end; the wrap stays alive while it does. False if it
   * cannot: the run's end then comes with init's reap. */
  bool watchRunEnd(Napi::Env env) {
    if (!armWatch(env)) return false;
    if (uv_poll_start(watch_->poll, UV_READABLE, &ContainerWrap::OnReportReadable) != 0) {
      closePoll(*watch_);
      return false;
    }
    watch_->watching = true;
    Napi::ObjectWrap<ContainerWrap>::Ref();
    return true;
  }

  /** Closes the watch's poll handle, if it has one. */
  static void closePoll(RunEndWatch& watch) {
    if (watch.poll == nullptr) return;
    uv_poll_stop(watch.poll);
    uv_close(reinterpret_cast<uv_handle_t*>(watch.poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    watch.poll = nullptr;
    watch.watching = false;
  }

  /** Stops watching the report pipe and lets the wrap be collected again. */
  static void stopWatching(RunEndWatch& watch) {
    if (watch.poll == nullptr) return;
    auto* self = static_cast<ContainerWrap*>(watch.poll->data);
    const bool wasWatching = watch.watching;
    closePoll(watch);
    if (wasWatching) self->Napi::ObjectWrap<ContainerWrap>::Unref();
  }

  /** The run's report, once its end is final: the watch stops and the exit counts as delivered
   * (the caller delivers it), whichever of the pipe and init's reap got there first. */
  static ExitReport takeRunEnd(RunEndWatch& watch, ContainerState& state) {
    stopWatching(watch);
    watch.exitDelivered = true;
    return cb::collectRunReport(state, watch.failure);
  }

  static void OnReportReadable(uv_poll_t* poll, int status, int events) {
    static_cast<ContainerWrap*>(poll->data)->onReportReadable();
  }

  void onReportReadable() {
    RunEndWatch& watch = *watch_;
    cb::RunEnd end = cb::readRunEnd(*state_, watch.failure);
    if (end == cb::RunEnd::kPending) return;
    // kClosed: init is gone without "done"; its reap ("gone") completes the exit.
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (end != cb::RunEnd::kDone || watch.exitDelivered) {
      stopWatching(watch);
      return;
    }
    ExitReport report = takeRunEnd(watch, *state_);
    try {
      std::vector<napi_value> args = exitArguments(env, report);
      callback_.MakeCallback(env.Global(), args, *asyncContext_);
    } catch (const Napi::Error& error) {
      // No JS frame to throw into from an event loop callback: report it as uncaught.
      napi_fatal_exception(env, error.Value());
    }
  }

  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    cb::cancelContainer(*state_);
    return info.Env().Undefined();
  }

  /** The pending "exit" keeps Node alive only while someone waits for it (a start, a destroy);
   * an idle prepared container does not. */
  Napi::Value Ref(const Napi::CallbackInfo& info) {
    if (*tsfnAlive_) tsfn_.Ref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value Unref(const Napi::CallbackInfo& info) {
    if (*tsfnAlive_) tsfn_.Unref(info.Env());
    return info.Env().Undefined();
  }

  Napi::Value InitPid(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), state_->initPid);
  }

  std::shared_ptr<ContainerState> state_;
  std::shared_ptr<RunEndWatch> watch_ = std::make_shared<RunEndWatch>();
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> asyncContext_;
  Napi::ThreadSafeFunction tsfn_;
  std::shared_ptr<bool> tsfnAlive_ = std::make_shared<bool>(true);
};

/** holdLockFile(path) -> fd; throws with .errno (EWOULDBLOCK: held elsewhere). */
Napi::Value HoldLockFile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "holdLockFile(path)");
  int fd = cb::holdLockFile(info[0].As<Napi::String>().Utf8Value());
  if (fd < 0) {
    Napi::Error error = Napi::Error::New(env, "cannot lock " + info[0].As<Napi::String>().Utf8Value());
    error.Set("errno", Napi::Number::New(env, -fd));
    throw error;
  }
  return Napi::Number::New(env, fd);
}

/** isLockFileHeld(path) -> boolean; throws with .errno when the file cannot be opened. */
Napi::Value IsLockFileHeld(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "isLockFileHeld(path)");
  int held = cb::isLockFileHeld(info[0].As<Napi::String>().Utf8Value());
  if (held < 0) {
    Napi::Error error = Napi::Error::New(env, "cannot open " + info[0].As<Napi::String>().Utf8Value());
    error.Set("errno", Napi::Number::New(env, -held));
    throw error;
  }
  return Napi::Boolean::New(env, held == 1);
}

/** readXattr(path, name) -> the extended attribute's value, or -errno (ENODATA: not set). Node
 * has no xattr call; the cgroup backend reads the mark a service manager leaves on a cgroup it
 * delegated (systemd's trusted.delegate). */
Napi::Value ReadXattr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) throw Napi::TypeError::New(env, "readXattr(path, name)");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string name = info[1].As<Napi::String>().Utf8Value();
  char value[256];
  const ssize_t length = ::getxattr(path.c_str(), name.c_str(), value, sizeof value);
  if (length < 0) return Napi::Number::New(env, -errno);
  return Napi::String::New(env, value, static_cast<size_t>(length));
}

/** openPidfd(pid) -> a pidfd, or -errno (ESRCH: no such process; ENOSYS: no pidfds here). */
Napi::Value OpenPidfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "openPidfd(pid)");
  return Napi::Number::New(env, cb::openPidfd(info[0].As<Napi::Number>().Int32Value()));
}

/** signalPidfd(fd, signal) -> 0, or errno (ESRCH: the process has ended). */
Napi::Value SignalPidfd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) throw Napi::TypeError::New(env, "signalPidfd(fd, signal)");
  int fd = info[0].As<Napi::Number>().Int32Value();
  return Napi::Number::New(env, cb::signalPidfd(fd, info[1].As<Napi::Number>().Int32Value()));
}

/** createPipe() -> [readFd, writeFd], both close-on-exec: for a connected run's two containers or
 * a streaming run's one (PrepareOptions.stdinPipeFd); the caller closes the ends it gave them
 * once they are prepared. */
Napi::Value CreatePipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int readEnd = -1, writeEnd = -1;
  try {
    cb::createPipe(readEnd, writeEnd);
  } catch (const cb::SetupError& e) {
    throwSetupError(env, e);
  }
  Napi::Array ends = Napi::Array::New(env, 2);
  ends.Set(0u, Napi::Number::New(env, readEnd));
  ends.Set(1u, Napi::Number::New(env, writeEnd));
  return ends;
}

/** A window size argument: an integer 1-65535 (struct winsize's unsigned short). */
uint16_t getTerminalDimension(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
  if (!(d >= 1 && d <= 65535) || d != static_cast<double>(static_cast<uint16_t>(d))) {
    throw Napi::TypeError::New(info.Env(), std::string(name) + " must be an integer 1-65535");
  }
  return static_cast<uint16_t>(d);
}

/** openTerminal(rows, cols) -> [masterFd, peerFd]: a pseudo-terminal for a streaming run whose
 * program has a terminal (the peer as PrepareOptions' three pipe fds, with controllingTerminal);
 * the caller reads and writes the master, which is non-blocking, and closes the peer once the
 * container is prepared. Both close-on-exec. */
Napi::Value OpenTerminal(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint16_t rows = getTerminalDimension(info, 0, "rows");
  uint16_t cols = getTerminalDimension(info, 1, "cols");
  int master = -1, peer = -1;
  try {
    cb::openTerminal(master, peer, rows, cols);
  } catch (const cb::SetupError& e) {
    throwSetupError(env, e);
  }
  Napi::Array ends = Napi::Array::New(env, 2);
  ends.Set(0u, Napi::Number::New(env, master));
  ends.Set(1u, Napi::Number::New(env, peer));
  return ends;
}

/** setTerminalSize(masterFd, rows, cols): the terminal's new window size (its program gets
 * SIGWINCH); throws an Error with `errno` when the kernel refuses. */
Napi::Value SetTerminalSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "masterFd must be a descriptor");
  int fd = info[0].As<Napi::Number>().Int32Value();
  uint16_t rows = getTerminalDimension(info, 1, "rows");
  uint16_t cols = getTerminalDimension(info, 2, "cols");
  int err = cb::setTerminalSize(fd, rows, cols);
  if (err != 0) {
    Napi::Error error = Napi::Error::New(env, std::string("TIOCSWINSZ: ") + strerror(err));
    error.Set("errno", Napi::Number::New(env, err));
    throw error;
  }
  return env.Undefined();
}

/** A plain object of named counters. */
Napi::Object countsObject(Napi::Env env, std::initializer_list<std::pair<const char*, int64_t>> counts) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, value] : counts) o.Set(name, Napi::Number::New(env, static_cast<double>(value)));
  return o;
}

/** resourceCounts() -> {mappedStacks, supervisorThreads, openStates}: for leak checks. */
Napi::Value ResourceCounts(const Napi::CallbackInfo& info) {
  cb::ResourceCounts c = cb::resourceCounts();
  return countsObject(info.Env(), {{"mappedStacks", c.mappedStacks}, {"supervisorThreads", c.supervisorThreads}, {"openStates", c.openStates}});
}

/** joinCounts() -> {clonedInto, joined}: how programs' children got into their cgroups. */
Napi::Value JoinCounts(const Napi::CallbackInfo& info) {
  cb::JoinCounts c = cb::joinCounts();
  return countsObject(info.Env(), {{"clonedInto", c.clonedInto}, {"joined", c.joined}});
}

/** seccompPolicy() -> {filter: Buffer of struct sock_filter, refused, notImplemented, cloneNr,
 * cloneNamespaceFlags, socketNrs, socketFamilies: [{family, protocols}], setsockoptNr,
 * socketOptionLevel, ignoredSocketOptions, ioctlNr, refusedIoctls, setrlimitNr, prlimitNr,
 * fixedRlimit, auditArch, x32SyscallBit, firstUnreviewedNr}: for the tests that check the filter. */
Napi::Value SeccompPolicy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  cb::SeccompPolicy policy = cb::seccompPolicy();
  Napi::Buffer<uint8_t> filter = Napi::Buffer<uint8_t>::New(env, policy.filter.size() * 8);
  for (size_t i = 0; i < policy.filter.size(); i++) {
    const auto& insn = policy.filter[i];
    uint8_t* at = filter.Data() + i * 8;
    memcpy(at, &insn.code, 2);
    at[2] = insn.jt;
    at[3] = insn.jf;
    memcpy(at + 4, &insn.k, 4);
  }
  auto numbers = [&](const std::vector<uint32_t>& values) {
    Napi::Array array = Napi::Array::New(env, values.size());
    for (size_t i = 0; i < values.size(); i++) array.Set(i, Napi::Number::New(env, values[i]));
    return array;
  };
  Napi::Object o = Napi::Object::New(env);
  o.Set("filter", filter);
  o.Set("refused", numbers(policy.refused));
  o.Set("notImplemented", numbers(policy.notImplemented));
  o.Set("cloneNr", Napi::Number::New(env, policy.cloneNr));
  o.Set("cloneNamespaceFlags", Napi::Number::New(env, policy.cloneNamespaceFlags));
  o.Set("socketNrs", numbers(policy.socketNrs));
  Napi::Array families = Napi::Array::New(env, policy.socketFamilies.size());
  for (size_t i = 0; i < policy.socketFamilies.size(); i++) {
    Napi::Object family = Napi::Object::New(env);
    family.Set("family", Napi::Number::New(env, policy.socketFamilies[i].family));
    family.Set("protocols", numbers(policy.socketFamilies[i].protocols));
    families.Set(i, family);
  }
  o.Set("socketFamilies", families);
  o.Set("setsockoptNr", Napi::Number::New(env, policy.setsockoptNr));
  o.Set("socketOptionLevel", Napi::Number::New(env, policy.socketOptionLevel));
  o.Set("ignoredSocketOptions", numbers(policy.ignoredSocketOptions));
  o.Set("ioctlNr", Napi::Number::New(env, policy.ioctlNr));
  o.Set("refusedIoctls", numbers(policy.refusedIoctls));
  o.Set("setrlimitNr", Napi::Number::New(env, policy.setrlimitNr));
  o.Set("prlimitNr", Napi::Number::New(env, policy.prlimitNr));
  o.Set("fixedRlimit", Napi::Number::New(env, policy.fixedRlimit));
  o.Set("auditArch", Napi::Number::New(env, policy.auditArch));
  o.Set("x32SyscallBit", Napi::Number::New(env, policy.x32SyscallBit));
  o.Set("firstUnreviewedNr", Napi::Number::New(env, policy.firstUnreviewedNr));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("resourceCounts", Napi::Function::New(env, ResourceCounts));
  exports.Set("joinCounts", Napi::Function::New(env, JoinCounts));
  exports.Set("seccompPolicy", Napi::Function::New(env, SeccompPolicy));
  exports.Set("Container", ContainerWrap::Define(env));
  exports.Set("holdLockFile", Napi::Function::New(env, HoldLockFile));
  exports.Set("isLockFileHeld", Napi::Function::New(env, IsLockFileHeld));
  exports.Set("openPidfd", Napi::Function::New(env, OpenPidfd));
  exports.Set("readXattr", Napi::Function::New(env, ReadXattr));
  exports.Set("signalPidfd", Napi::Function::New(env, SignalPidfd));
  exports.Set("createPipe", Napi::Function::New(env, CreatePipe));
  exports.Set("openTerminal", Napi::Function::New(env, OpenTerminal));
  exports.Set("setTerminalSize", Napi::Function::New(env, SetTerminalSize));
  return exports;
}

}  // namespace

NODE_API_MODULE(cellblock_native, Init)
