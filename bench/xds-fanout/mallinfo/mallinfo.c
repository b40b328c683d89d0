/*
 * glibc's malloc statistics for the benchmark's servers (run.mjs --mallinfo): live bytes handed
 * out by malloc (heap arenas and mmap'd chunks) and free bytes it keeps, so native memory per
 * stream can be read as live allocations rather than inferred from RSS. Diagnostic only: built
 * on demand by run.mjs with the system C compiler and Node's headers; nothing else loads it.
 */
#include <malloc.h>
#include <node_api.h>

static void set(napi_env env, napi_value obj, const char *name, size_t value) {
  napi_value v;
  napi_create_double(env, (double)value, &v);
  napi_set_named_property(env, obj, name, v);
}

static napi_value stats(napi_env env, napi_callback_info info) {
  (void)info;
  struct mallinfo2 m = mallinfo2();
  napi_value obj;
  napi_create_object(env, &obj);
  set(env, obj, "arenaBytes", m.arena);     /* obtained with brk/sbrk and arena mmaps */
  set(env, obj, "mmapBytes", m.hblkhd);     /* large chunks, each its own mmap */
  set(env, obj, "usedBytes", m.uordblks);   /* in use within the arenas */
  set(env, obj, "freeBytes", m.fordblks);   /* free within the arenas */
  return obj;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "stats", NAPI_AUTO_LENGTH, stats, NULL, &fn);
  napi_set_named_property(env, exports, "stats", fn);
  return exports;
}
