// fields.h is a hand-kept copy of the schema's field numbers: check each constant against the
// protoc-generated descriptors, and that no schema field lacks a constant.
#include "proto/wire/fields.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pyrewind/v1/trace.pb.h"

namespace pyrewind::wire {
namespace {

namespace f = fields;
using google::protobuf::Descriptor;
using google::protobuf::EnumDescriptor;
using google::protobuf::FieldDescriptor;

using Expected = std::vector<std::pair<const char*, uint32_t>>;

void check_message(const Descriptor* message, const Expected& expected) {
  ASSERT_NE(message, nullptr);
  std::set<std::string> named;
  for (const auto& [name, number] : expected) {
    const FieldDescriptor* field = message->FindFieldByName(name);
    ASSERT_NE(field, nullptr) << message->full_name() << "." << name << " is not in the schema";
    EXPECT_EQ(static_cast<uint32_t>(field->number()), number) << message->full_name() << "." << name;
    named.insert(name);
  }
  for (int i = 0; i < message->field_count(); ++i) {
    EXPECT_TRUE(named.count(message->field(i)->name()))
        << message->full_name() << "." << message->field(i)->name() << " has no constant in fields.h";
  }
}

TEST(Fields, PacketBatch) { check_message(v1::PacketBatch::descriptor(), {{"packet", f::PacketBatch::kPacket}}); }

TEST(Fields, Packet) {
  check_message(v1::Packet::descriptor(), {{"string_def", f::Packet::kStringDef},
                                           {"code_def", f::Packet::kCodeDef},
                                           {"thread_start", f::Packet::kThreadStart},
                                           {"thread_end", f::Packet::kThreadEnd},
                                           {"event", f::Packet::kEvent},
                                           {"loss", f::Packet::kLoss},
                                           {"agent_status", f::Packet::kAgentStatus},
                                           {"sample", f::Packet::kSample}});
}

TEST(Fields, Definitions) {
  check_message(v1::StringDef::descriptor(), {{"id", f::StringDef::kId}, {"text", f::StringDef::kText}});
  check_message(v1::CodeDef::descriptor(), {{"id", f::CodeDef::kId},
                                            {"file_name_id", f::CodeDef::kFileNameId},
                                            {"qualified_name_id", f::CodeDef::kQualifiedNameId},
                                            {"first_line", f::CodeDef::kFirstLine},
                                            {"local_name_ids", f::CodeDef::kLocalNameIds},
                                            {"module_level", f::CodeDef::kModuleLevel},
                                            {"native", f::CodeDef::kNative}});
  check_message(v1::ThreadStart::descriptor(), {{"thread", f::ThreadStart::kThread},
                                                {"native_id", f::ThreadStart::kNativeId},
                                                {"name", f::ThreadStart::kName},
                                                {"ident", f::ThreadStart::kIdent},
                                                {"pid", f::ThreadStart::kPid}});
  check_message(v1::ThreadEnd::descriptor(), {{"thread", f::ThreadEnd::kThread}});
}

TEST(Fields, Event) {
  check_message(v1::Event::descriptor(), {{"kind", f::Event::kKind},
                                          {"time_delta_ns", f::Event::kTimeDeltaNs},
                                          {"code_id", f::Event::kCodeId},
                                          {"line", f::Event::kLine},
                                          {"depth", f::Event::kDepth},
                                          {"locals", f::Event::kLocals},
                                          {"value", f::Event::kValue},
                                          {"exception", f::Event::kException},
                                          {"thread", f::Event::kThread},
                                          {"time_ns", f::Event::kTimeNs},
                                          {"full_state", f::Event::kFullState},
                                          {"locals_incomplete", f::Event::kLocalsIncomplete}});
  check_message(v1::Binding::descriptor(), {{"slot", f::Binding::kSlot},
                                            {"name", f::Binding::kName},
                                            {"value", f::Binding::kValue},
                                            {"unbound", f::Binding::kUnbound}});
  check_message(v1::ExceptionInfo::descriptor(), {{"type_name", f::ExceptionInfo::kTypeName},
                                                  {"message", f::ExceptionInfo::kMessage},
                                                  {"message_truncated", f::ExceptionInfo::kMessageTruncated}});
}

TEST(Fields, Values) {
  check_message(v1::Value::descriptor(), {{"none", f::Value::kNone},
                                          {"bool_value", f::Value::kBool},
                                          {"int_value", f::Value::kInt},
                                          {"big_int", f::Value::kBigInt},
                                          {"float_value", f::Value::kFloat},
                                          {"str_value", f::Value::kStr},
                                          {"bytes_value", f::Value::kBytes},
                                          {"container", f::Value::kContainer},
                                          {"object", f::Value::kObject},
                                          {"redacted", f::Value::kRedacted}});
  check_message(v1::BigInt::descriptor(), {{"negative", f::BigInt::kNegative},
                                           {"magnitude_le", f::BigInt::kMagnitudeLe},
                                           {"bit_length", f::BigInt::kBitLength},
                                           {"truncated", f::BigInt::kTruncated}});
  check_message(v1::Text::descriptor(),
                {{"text", f::Text::kText}, {"length", f::Text::kLength}, {"truncated", f::Text::kTruncated}});
  check_message(v1::Blob::descriptor(),
                {{"data", f::Blob::kData}, {"length", f::Blob::kLength}, {"truncated", f::Blob::kTruncated}});
  check_message(v1::Container::descriptor(), {{"kind", f::Container::kKind},
                                              {"id", f::Container::kId},
                                              {"length", f::Container::kLength},
                                              {"items", f::Container::kItems},
                                              {"truncated", f::Container::kTruncated},
                                              {"reused_items", f::Container::kReusedItems}});
  check_message(v1::ObjectRef::descriptor(), {{"type_name", f::ObjectRef::kTypeName},
                                              {"id", f::ObjectRef::kId},
                                              {"repr", f::ObjectRef::kRepr},
                                              {"repr_truncated", f::ObjectRef::kReprTruncated},
                                              {"repr_error", f::ObjectRef::kReprError}});
}

TEST(Fields, StatusAndLoss) {
  check_message(v1::Loss::descriptor(), {{"thread", f::Loss::kThread},
                                         {"dropped_records", f::Loss::kDroppedRecords},
                                         {"dropped_bytes", f::Loss::kDroppedBytes},
                                         {"reason", f::Loss::kReason}});
  check_message(v1::Sample::descriptor(), {{"thread", f::Sample::kThread},
                                           {"time_ns", f::Sample::kTimeNs},
                                           {"code_ids", f::Sample::kCodeIds},
                                           {"lines", f::Sample::kLines},
                                           {"gil", f::Sample::kGil},
                                           {"idle", f::Sample::kIdle}});
  check_message(v1::AgentStatus::descriptor(), {{"state", f::AgentStatus::kState},
                                                {"message", f::AgentStatus::kMessage},
                                                {"time_ns", f::AgentStatus::kTimeNs}});
}

// The encoder picks the wire encoding from the method it calls; these fields need a specific one.
TEST(Fields, EncodingsTheEncoderAssumes) {
  const Descriptor* value = v1::Value::descriptor();
  EXPECT_EQ(value->FindFieldByNumber(f::Value::kInt)->type(), FieldDescriptor::TYPE_SINT64);  // sint_field
  EXPECT_EQ(value->FindFieldByNumber(f::Value::kFloat)->type(), FieldDescriptor::TYPE_DOUBLE);  // double_field
  const FieldDescriptor* local_names = v1::CodeDef::descriptor()->FindFieldByNumber(f::CodeDef::kLocalNameIds);
  EXPECT_TRUE(local_names->is_repeated());
  EXPECT_TRUE(local_names->is_packed());  // proto3 packs repeated scalars
  const FieldDescriptor* packet = v1::PacketBatch::descriptor()->FindFieldByNumber(f::PacketBatch::kPacket);
  EXPECT_TRUE(packet->is_repeated());
  EXPECT_EQ(packet->message_type(), v1::Packet::descriptor());
  // Every Packet body is a oneof member: exactly one per packet.
  for (int i = 0; i < v1::Packet::descriptor()->field_count(); ++i) {
    EXPECT_NE(v1::Packet::descriptor()->field(i)->containing_oneof(), nullptr);
  }
}

void check_enum(const EnumDescriptor* schema, const std::vector<std::pair<const char*, uint32_t>>& mirror) {
  ASSERT_NE(schema, nullptr);
  for (const auto& [name, number] : mirror) {
    const auto* value = schema->FindValueByName(name);
    ASSERT_NE(value, nullptr) << schema->full_name() << "." << name;
    EXPECT_EQ(static_cast<uint32_t>(value->number()), number) << schema->full_name() << "." << name;
  }
  // The mirror covers every value except the zero "unspecified" one.
  EXPECT_EQ(static_cast<size_t>(schema->value_count()), mirror.size() + 1) << schema->full_name();
  EXPECT_EQ(schema->value(0)->number(), 0);
}

TEST(Fields, EnumMirrors) {
  check_enum(v1::EventKind_descriptor(), {{"EVENT_CALL", static_cast<uint32_t>(EventKind::kCall)},
                                          {"EVENT_LINE", static_cast<uint32_t>(EventKind::kLine)},
                                          {"EVENT_RETURN", static_cast<uint32_t>(EventKind::kReturn)},
                                          {"EVENT_EXCEPTION", static_cast<uint32_t>(EventKind::kException)},
                                          {"EVENT_EXCEPTION_HANDLED",
                                           static_cast<uint32_t>(EventKind::kExceptionHandled)}});
  check_enum(v1::ContainerKind_descriptor(),
             {{"CONTAINER_LIST", static_cast<uint32_t>(ContainerKind::kList)},
              {"CONTAINER_TUPLE", static_cast<uint32_t>(ContainerKind::kTuple)},
              {"CONTAINER_DICT", static_cast<uint32_t>(ContainerKind::kDict)},
              {"CONTAINER_SET", static_cast<uint32_t>(ContainerKind::kSet)},
              {"CONTAINER_FROZENSET", static_cast<uint32_t>(ContainerKind::kFrozenSet)}});
  check_enum(v1::AgentStatus::State_descriptor(),
             {{"STATE_TRACING", static_cast<uint32_t>(AgentState::kTracing)},
              {"STATE_STOPPED", static_cast<uint32_t>(AgentState::kStopped)},
              {"STATE_WARNING", static_cast<uint32_t>(AgentState::kWarning)}});
}

}  // namespace
}  // namespace pyrewind::wire
