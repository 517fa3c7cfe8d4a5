// Structured capture of Python values within the capture limits, without running user code
// (unless --repr) and without allocating Python objects.
//
// `fingerprint` and `encode` walk a value by the same rules, so two values with the same
// fingerprint encode to the same bytes (up to 64-bit hash collisions). The recorder uses this
// to send a local again only when what would be recorded changed: a mutation anywhere within
// the limits (an item appended to a list reached through a dict) changes the fingerprint,
// and so does a new object that happens to reuse a freed object's address.
#pragma once

#include <cstddef>
#include <cstdint>

#include "compat/compat.h"
#include "proto/wire/proto_writer.h"
#include "src/agent.h"

namespace pyrewind::agent {

class ValueCapture {
 public:
  explicit ValueCapture(const CaptureLimits& limits) : limits_(limits) {}

  uint64_t fingerprint(PyObject* value) const;
  // Encodes `value` as a pyrewind.v1.Value in field `field`, using at most about `budget`
  // bytes of `writer`: containers and strings that would exceed it are cut and marked.
  void encode(wire::ProtoWriter& writer, uint32_t field, PyObject* value, size_t budget) const;
  void encode_redacted(wire::ProtoWriter& writer, uint32_t field) const;

  // Encodes a pyrewind.v1.ExceptionInfo: the type name and, for builtin exception types, a
  // message that needs no user code: args[0] when it is the only argument and an exact str,
  // "" without arguments; otherwise no message (str() of anything else could run user code).
  void encode_exception(wire::ProtoWriter& writer, uint32_t field, PyObject* exception) const;

 private:
  struct Path;  // the containers being walked, for cycle detection
  uint64_t fingerprint_at(PyObject* value, uint32_t depth, const Path* path) const;
  void encode_at(wire::ProtoWriter& writer, uint32_t field, PyObject* value, uint32_t depth,
                 const Path* path, size_t budget_end) const;
  void encode_container(wire::ProtoWriter& writer, PyObject* value, uint32_t depth, const Path* path,
                        size_t budget_end) const;
  void encode_object(wire::ProtoWriter& writer, PyObject* value, size_t budget_end) const;

  const CaptureLimits& limits_;
};

}  // namespace pyrewind::agent
